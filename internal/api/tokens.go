package api

import (
	"net/http"
	"net/url"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/token"
	"github.com/dpe-engine/dpe/internal/wire"
)

func (a *API) tokenRoutes() {
	a.handle("POST /v1/tokens", a.createToken)
	a.handle("GET /v1/tokens", a.listTokens)
	a.handle("DELETE /v1/tokens/{name}", a.revokeToken)
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request) {
	var req wire.TokenRequest
	if p := decode(w, r, MaxBody, &req); p != nil {
		writeProblem(w, *p)
		return
	}
	t, secret, err := token.Create(r.Context(), a.authn.store, model.Token{Name: req.Name, Role: req.Role, Triggers: req.Triggers, Types: req.Types}, a.clock.Now())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	a.authn.markOn()
	created(w, "/v1/tokens/"+url.PathEscape(t.Name))
	writeJSON(w, http.StatusCreated, wire.TokenCreated{Token: t, Secret: secret})
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request) {
	list, err := a.authn.store.TokenList(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if list == nil {
		list = []model.Token{}
	}
	writeJSON(w, http.StatusOK, wire.Items[model.Token]{Items: list})
}

func (a *API) revokeToken(w http.ResponseWriter, r *http.Request) {
	if err := a.authn.store.TokenRevoke(r.Context(), r.PathValue("name"), a.clock.Now()); err != nil {
		a.writeError(w, r, err)
		return
	}
	a.authn.forget()
	w.WriteHeader(http.StatusNoContent)
}
