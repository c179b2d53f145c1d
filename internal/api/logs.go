package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// logRoutes serves the log lines of jobs and workflow instances. A
// workflow's lines are written by its `log` steps (through the advances
// of its worker); a job's by its handler, through its processor.
func (a *API) logRoutes() {
	a.handle("GET /v1/jobs/{id}/logs", a.listLog(func(id int64) model.LogFilter { return model.LogFilter{JobID: id} }))
	a.handle("POST /v1/jobs/{id}/logs", withIDBody(a, a.appendJobLog))
	if a.flows != nil {
		a.handle("GET /v1/workflows/{id}/logs", a.listLog(func(id int64) model.LogFilter { return model.LogFilter{InstanceID: id} }))
	}
}

// listLog answers a page of a log, 404 when its owner does not exist.
func (a *API) listLog(filter func(id int64) model.LogFilter) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		page, err := a.logPage(r, filter)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, page)
	}
}

func (a *API) logPage(r *http.Request, filter func(id int64) model.LogFilter) (wire.LogPage, error) {
	ctx := r.Context()
	id, err := pathID(r)
	if err != nil {
		return wire.LogPage{}, err
	}
	f := filter(id)
	q := r.URL.Query()
	if f.After, err = queryInt(q.Get("after"), "after"); err != nil {
		return wire.LogPage{}, err
	}
	limit, err := queryInt(q.Get("limit"), "limit")
	if err != nil {
		return wire.LogPage{}, err
	}
	f.Limit = int(min(limit, 1<<20))
	if f.JobID != 0 {
		_, err = a.store.JobGet(ctx, id)
	} else {
		_, err = a.store.InstanceGet(ctx, id)
	}
	if err != nil {
		return wire.LogPage{}, err
	}
	lines, err := a.store.LogList(ctx, f)
	if err != nil {
		return wire.LogPage{}, err
	}
	page := wire.LogPage{Lines: lines, Next: f.After}
	if page.Lines == nil {
		page.Lines = []model.LogLine{}
	}
	if n := len(lines); n > 0 {
		page.Next = lines[n-1].Seq
	}
	return page, nil
}

// appendJobLog stores lines of a job's log.
func (a *API) appendJobLog(ctx context.Context, id int64, req wire.LogAppend) (struct{}, error) {
	if len(req.Lines) > wire.MaxLogAppend {
		return struct{}{}, model.Invalid("lines", "at most %d per call, got %d", wire.MaxLogAppend, len(req.Lines))
	}
	for i, l := range req.Lines {
		if l.Level != "" && !model.ValidLogLevel(l.Level) {
			return struct{}{}, model.Invalid("lines["+strconv.Itoa(i)+"].level", "must be debug, info, warn or error, got %q", l.Level)
		}
	}
	return struct{}{}, a.store.LogAppend(ctx, 0, id, req.Lines, a.clock.Now())
}
