package api

import (
	"net/http"

	"github.com/dpe-engine/dpe/internal/model"
)

// claim serves POST /v1/claims. It is idempotent without the idempotency
// records of the other mutations (no read before, no write after each
// claim): the store keeps the Idempotency-Key on the claimed jobs, and a
// claim repeating it returns the jobs the first one handed out that the
// processor still runs, instead of claiming more.
//
// One difference with the records: a claim repeating a key with a
// different body is not refused with 422 any more; it gets the jobs of the
// first claim, like an exact repeat.
func (a *API) claim(w http.ResponseWriter, r *http.Request) {
	key, p := idempotencyKey(r)
	if p != nil {
		writeProblem(w, *p)
		return
	}
	var req model.ClaimRequest
	if p := decode(w, r, MaxBody, &req); p != nil {
		writeProblem(w, *p)
		return
	}
	jobs, err := a.jobs.Claim(r.Context(), req, key)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, model.JobList{Jobs: jobs})
}

func (a *API) heartbeat(w http.ResponseWriter, r *http.Request) {
	var req model.HeartbeatRequest
	if p := decode(w, r, MaxBody, &req); p != nil {
		writeProblem(w, *p)
		return
	}
	res, err := a.jobs.Heartbeat(r.Context(), req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, model.HeartbeatResponse{Jobs: res})
}

func (a *API) completeMany(w http.ResponseWriter, r *http.Request) {
	var b model.CompletionBatch
	if p := decode(w, r, MaxBatchBody, &b); p != nil {
		writeProblem(w, *p)
		return
	}
	cs := make([]model.Completion, len(b.Completions))
	for i, c := range b.Completions {
		cs[i] = c.Completion
		cs[i].ID = c.ID
	}
	res, err := a.jobs.CompleteMany(r.Context(), cs)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := model.CompletionResults{Results: make([]model.CompletionResult, len(res))}
	for i, x := range res {
		cr := model.CompletionResult{ID: cs[i].ID, Status: http.StatusOK}
		if x.Err == nil {
			j := x.Job
			cr.Job = &j
		} else if status, ok := refusal(x.Err); ok {
			cr.Status, cr.Error = status, x.Err.Error()
		} else {
			a.writeError(w, r, x.Err)
			return
		}
		out.Results[i] = cr
	}
	writeJSON(w, http.StatusOK, out)
}

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
	writeJSON(w, http.StatusOK, model.Items[model.Processor]{Items: list})
}

func (a *API) listTypes(w http.ResponseWriter, r *http.Request) {
	list, err := a.jobs.Types(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, model.Items[model.TypeLimit]{Items: list})
}

func (a *API) putType(w http.ResponseWriter, r *http.Request) {
	var l model.TypeLimit
	if p := decode(w, r, MaxBody, &l); p != nil {
		writeProblem(w, *p)
		return
	}
	if l.Type == "" {
		l.Type = r.PathValue("name")
	}
	if l.Type != r.PathValue("name") {
		a.writeError(w, r, model.Invalid("type", "body type %q differs from the path's %q", l.Type, r.PathValue("name")))
		return
	}
	out, err := a.jobs.PutType(r.Context(), l)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) status(w http.ResponseWriter, r *http.Request) {
	var st model.Status
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
	if st.Jobs, err = a.jobs.Counts(r.Context()); err != nil {
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
