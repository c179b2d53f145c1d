package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

func (a *API) submitJob(w http.ResponseWriter, r *http.Request) {
	var spec model.JobSpec
	if p := decode(w, r, MaxBody, &spec); p != nil {
		writeProblem(w, *p)
		return
	}
	if !mayRunTypes(w, r, spec.Type) {
		return
	}
	res, err := a.jobs.Submit(r.Context(), []model.JobSpec{spec}, r.Header.Get("Idempotency-Key"), false)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	status := http.StatusCreated
	if res[0].Existing {
		status = http.StatusOK
	} else {
		created(w, "/v1/jobs/"+strconv.FormatInt(res[0].Job.ID, 10))
	}
	writeJSON(w, status, res[0].Job)
}

func (a *API) submitBatch(w http.ResponseWriter, r *http.Request) {
	var b wire.JobBatch
	if p := decode(w, r, MaxBatchBody, &b, itemCap{"jobs", wire.MaxJobBatch}); p != nil {
		writeProblem(w, *p)
		return
	}
	types := make([]string, len(b.Jobs))
	for i, j := range b.Jobs {
		types[i] = j.Type
	}
	if !mayRunTypes(w, r, types...) {
		return
	}
	res, err := a.jobs.Submit(r.Context(), b.Jobs, r.Header.Get("Idempotency-Key"), true)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := wire.JobList{Jobs: make([]model.Job, len(res))}
	created := false
	for i, x := range res {
		out.Jobs[i] = x.Job
		created = created || !x.Existing
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, out)
}

func (a *API) listJobs(w http.ResponseWriter, r *http.Request) {
	f, err := jobFilter(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	page, err := a.jobs.List(r.Context(), f)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// jobFilter reads the list filters from the query string.
func jobFilter(r *http.Request) (model.JobFilter, error) {
	q := r.URL.Query()
	var f model.JobFilter
	for _, s := range splitList(q.Get("state")) {
		f.States = append(f.States, model.JobState(s))
	}
	f.Types = splitList(q.Get("type"))
	var err error
	if f.InstanceID, err = queryInt(q.Get("workflow"), "workflow"); err != nil {
		return f, err
	}
	if f.After, err = queryInt(q.Get("after"), "after"); err != nil {
		return f, err
	}
	limit, err := queryInt(q.Get("limit"), "limit")
	if err != nil {
		return f, err
	}
	f.Limit = int(limit)
	if f.CreatedAfter, err = queryTime(q.Get("created_after"), "created_after"); err != nil {
		return f, err
	}
	if f.CreatedBefore, err = queryTime(q.Get("created_before"), "created_before"); err != nil {
		return f, err
	}
	return f, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func queryInt(s, field string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, model.Invalid(field, "must be a non-negative integer, got %q", s)
	}
	return n, nil
}

func queryTime(s, field string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	// A time whose UTC is outside years 0–9999 (0000-01-01T00:00:00+01:00)
	// has no RFC 3339 form, so no client could send it back.
	if y := t.UTC().Year(); err != nil || y < 0 || y > 9999 {
		return t, model.Invalid(field, "must be an RFC 3339 time such as 2026-11-25T02:00:00Z, got %q", s)
	}
	return t, nil
}
