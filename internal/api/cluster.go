package api

import (
	"net/http"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

func (a *API) putProcessor(w http.ResponseWriter, r *http.Request) {
	var p model.Processor
	if prob := decode(w, r, MaxBody, &p); prob != nil {
		writeProblem(w, *prob)
		return
	}
	if p.ID == "" {
		p.ID = r.PathValue("id")
	}
	if p.ID != r.PathValue("id") {
		a.writeError(w, r, model.Invalid("id", "body id %q differs from the path's %q", p.ID, r.PathValue("id")))
		return
	}
	if err := a.jobs.ProcessorSeen(r.Context(), p); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) listProcessors(w http.ResponseWriter, r *http.Request) {
	list, err := a.jobs.Processors(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.Items[model.Processor]{Items: list})
}

func (a *API) listTypes(w http.ResponseWriter, r *http.Request) {
	list, err := a.jobs.Types(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.Items[model.TypeLimit]{Items: list})
}

func (a *API) putType(w http.ResponseWriter, r *http.Request) {
	var set wire.TypeSet
	if p := decode(w, r, MaxBody, &set); p != nil {
		writeProblem(w, *p)
		return
	}
	if set.Type == "" {
		set.Type = r.PathValue("name")
	}
	if set.Type != r.PathValue("name") {
		a.writeError(w, r, model.Invalid("type", "body type %q differs from the path's %q", set.Type, r.PathValue("name")))
		return
	}
	out, err := a.jobs.PutType(r.Context(), set)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	var st wire.Status
	if a.info != nil {
		st.Server = a.info()
	}
	if a.ready != nil {
		if err := a.ready(r.Context()); err != nil {
			st.Server.DBError = err.Error()
		} else {
			st.Server.Ready = true
		}
	}
	var err error
	if st.Processors, err = a.jobs.Processors(r.Context()); err != nil {
		a.writeError(w, r, err)
		return
	}
	if st.Types, err = a.jobs.Types(r.Context()); err != nil {
		a.writeError(w, r, err)
		return
	}
	if st.Jobs, st.JobsCapped, err = a.jobs.Counts(r.Context()); err != nil {
		a.writeError(w, r, err)
		return
	}
	st.Triggers = []model.Trigger{}
	if a.triggers != nil {
		if st.Triggers, err = a.triggerList(r.Context()); err != nil {
			a.writeError(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, st)
}
