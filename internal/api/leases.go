package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// leaseRoutes serves the named leases (standby triggers and other
// leader-only duties of remote roles).
func (a *API) leaseRoutes() {
	a.handle("POST /v1/leases/acquire", a.leaseAcquire)
	a.handle("POST /v1/leases/release", a.leaseRelease)
	a.handle("GET /v1/leases", a.leaseList)
}

func (a *API) leaseAcquire(w http.ResponseWriter, r *http.Request) {
	var req wire.LeaseRequest
	if p := decode(w, r, MaxBody, &req); p != nil {
		writeProblem(w, *p)
		return
	}
	if req.Name == "" || req.Holder == "" {
		a.writeError(w, r, model.Invalid("name", "name and holder are required"))
		return
	}
	for _, err := range []error{wire.CheckName("name", req.Name), wire.CheckName("holder", req.Holder)} {
		if err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	ttl := req.TTL.D()
	if ttl < wire.MinLeaseTTL || ttl > wire.MaxLeaseTTL {
		a.writeError(w, r, model.Invalid("ttl", "must be between 1s and 10m, got %s", ttl))
		return
	}
	l, err := a.store.LeaseAcquire(r.Context(), req.Name, req.Holder, ttl, a.clock.Now())
	if errors.Is(err, model.ErrConflict) {
		writeProblem(w, wire.Problem{Title: "lease held", Status: http.StatusConflict, Detail: "held by " + l.Holder + " until " + l.Until.Format(time.RFC3339Nano) + " (epoch " + strconv.FormatInt(l.Epoch, 10) + ")"})
		return
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, l)
}

func (a *API) leaseRelease(w http.ResponseWriter, r *http.Request) {
	var req wire.LeaseRequest
	if p := decode(w, r, MaxBody, &req); p != nil {
		writeProblem(w, *p)
		return
	}
	if err := a.store.LeaseRelease(r.Context(), req.Name, req.Holder); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) leaseList(w http.ResponseWriter, r *http.Request) {
	list, err := a.store.LeaseList(r.Context(), r.URL.Query().Get("prefix"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if list == nil {
		list = []model.Lease{}
	}
	writeJSON(w, http.StatusOK, wire.Items[model.Lease]{Items: list})
}
