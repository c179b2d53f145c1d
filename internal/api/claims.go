package api

import (
	"net/http"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
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
	jobs, err := a.jobs.Claim(r.Context(), req, scopedKey(r, key))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.JobList{Jobs: jobs})
}

func (a *API) heartbeat(w http.ResponseWriter, r *http.Request) {
	var req wire.HeartbeatRequest
	if p := decode(w, r, MaxBody, &req); p != nil {
		writeProblem(w, *p)
		return
	}
	res, err := a.jobs.Heartbeat(r.Context(), req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.HeartbeatResponse{Jobs: res})
}

func (a *API) completeMany(w http.ResponseWriter, r *http.Request) {
	var b wire.CompletionBatch
	if p := decode(w, r, MaxBatchBody, &b, itemCap{"completions", wire.MaxCompletions}); p != nil {
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
	out := wire.CompletionResults{Results: make([]wire.CompletionResult, len(res))}
	for i, x := range res {
		cr := wire.CompletionResult{ID: cs[i].ID, Status: http.StatusOK}
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
