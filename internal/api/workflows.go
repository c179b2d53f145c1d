package api

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

func (a *API) workflowRoutes() {
	a.handle("POST /v1/templates", a.importTemplate)
	a.handle("GET /v1/templates", a.listTemplates)
	a.handle("GET /v1/templates/{name}", a.getTemplate)
	a.handle("DELETE /v1/templates/{name}", a.deleteTemplate)

	a.handle("POST /v1/workflows", a.startWorkflow)
	a.handle("POST /v1/workflows/batch", a.startWorkflows)
	a.handle("GET /v1/workflows", a.listWorkflows)
	a.handle("GET /v1/workflows/{id}", withID(a, a.flows.Detail))
	a.handle("POST /v1/workflows/{id}/cancel", withID(a, a.flows.Cancel))
	a.handle("POST /v1/workflows/{id}/retry", a.idempotent(withID(a, a.flows.Retry)))
	a.handle("POST /v1/workflows/{id}/priority", withIDBody(a, func(ctx context.Context, id int64, req wire.PriorityRequest) (model.Instance, error) {
		return a.flows.SetPriority(ctx, id, req.Priority)
	}))

	// Not behind a.idempotent: a repeated claim returns again the due
	// instances the worker holds, so an answer lost in transit loses
	// nothing (and a claim costs no idempotency write).
	a.handle("POST /v1/worker/claims", a.claimInstances)
	a.handle("GET /v1/worker/instances/{id}", withID(a, a.flows.Detail))
	a.handle("POST /v1/worker/instances/{id}/advance", a.advance)
	a.handle("POST /v1/worker/advances", a.advanceMany)
	a.handle("POST /v1/worker/heartbeats", a.workerHeartbeat)
	a.handle("POST /v1/worker/releases", a.workerRelease)
}

func (a *API) importTemplate(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
		case mt == "application/json", mt == "application/yaml", mt == "application/x-yaml", mt == "text/yaml", mt == "text/x-yaml", mt == "text/plain":
			err = nil
		default:
			err = errors.New("unsupported")
		}
		if err != nil {
			writeProblem(w, wire.Problem{Title: "unsupported media type", Status: http.StatusUnsupportedMediaType, Detail: "send the template as application/yaml or application/json"})
			return
		}
	}
	body, p := readBody(w, r, MaxBody)
	if p != nil {
		writeProblem(w, *p)
		return
	}
	if !mayImport(w, r, body) {
		return
	}
	t, isNew, err := a.flows.Import(r.Context(), body)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	status := http.StatusOK
	if isNew {
		status = http.StatusCreated
		created(w, "/v1/templates/"+url.PathEscape(t.Name))
	}
	writeJSON(w, status, wire.TemplateImported{Template: t, Created: isNew})
}

func (a *API) listTemplates(w http.ResponseWriter, r *http.Request) {
	list, err := a.flows.Templates(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.Items[model.Template]{Items: list})
}

func (a *API) getTemplate(w http.ResponseWriter, r *http.Request) {
	v, err := queryInt(r.URL.Query().Get("version"), "version")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	t, err := a.flows.Template(r.Context(), r.PathValue("name"), int(v))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (a *API) deleteTemplate(w http.ResponseWriter, r *http.Request) {
	if err := a.flows.DeleteTemplate(r.Context(), r.PathValue("name")); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) startWorkflow(w http.ResponseWriter, r *http.Request) {
	var spec model.InstanceSpec
	if p := decode(w, r, MaxBody, &spec); p != nil {
		writeProblem(w, *p)
		return
	}
	inst, existing, err := a.flows.Start(r.Context(), spec, r.Header.Get("Idempotency-Key"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	status := http.StatusCreated
	if existing {
		status = http.StatusOK
	} else {
		created(w, "/v1/workflows/"+strconv.FormatInt(inst.ID, 10))
	}
	writeJSON(w, status, inst)
}

// startWorkflows starts a batch with one commit; each start gets its own
// status, as POST /v1/workflows would have answered it.
func (a *API) startWorkflows(w http.ResponseWriter, r *http.Request) {
	var b wire.StartBatch
	if p := decode(w, r, MaxBatchBody, &b, itemCap{"workflows", wire.MaxStarts}); p != nil {
		writeProblem(w, *p)
		return
	}
	res, err := a.flows.StartMany(r.Context(), b.Workflows, r.Header.Get("Idempotency-Key"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := wire.StartResults{Results: make([]wire.StartResult, len(res))}
	for i, x := range res {
		sr := wire.StartResult{Status: http.StatusCreated}
		if x.Err == nil {
			inst := x.Instance
			sr.Instance = &inst
			if x.Existing {
				sr.Status = http.StatusOK
			}
		} else if status, ok := refusal(x.Err); ok {
			sr.Status, sr.Error = status, x.Err.Error()
		} else {
			a.writeError(w, r, x.Err)
			return
		}
		out.Results[i] = sr
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) listWorkflows(w http.ResponseWriter, r *http.Request) {
	name, f, err := workflowFilter(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if name != "" {
		inst, err := a.flows.GetByName(r.Context(), name)
		page := model.Page[model.Instance]{Items: []model.Instance{}}
		switch {
		case err == nil:
			page.Items, page.Total = []model.Instance{inst}, 1
		case !errors.Is(err, model.ErrNotFound):
			a.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, page)
		return
	}
	page, err := a.flows.List(r.Context(), f)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// workflowFilter reads GET /v1/workflows's query string: the one instance
// name asked for ("" for none; the filters are then not read), or the
// list filters: state, template, parent, trigger, created_after,
// created_before (exclusive RFC 3339 bounds), after and limit.
func workflowFilter(r *http.Request) (string, model.InstanceFilter, error) {
	q := r.URL.Query()
	var f model.InstanceFilter
	if name := q.Get("name"); name != "" {
		return name, f, nil
	}
	for _, s := range splitList(q.Get("state")) {
		f.States = append(f.States, model.InstanceState(s))
	}
	f.Templates = splitList(q.Get("template"))
	f.Trigger = strings.TrimSpace(q.Get("trigger"))
	if err := wire.CheckName("trigger", f.Trigger); err != nil {
		return "", f, err
	}
	var err error
	if f.ParentID, err = queryInt(q.Get("parent"), "parent"); err != nil {
		return "", f, err
	}
	if f.After, err = queryInt(q.Get("after"), "after"); err != nil {
		return "", f, err
	}
	limit, err := queryInt(q.Get("limit"), "limit")
	if err != nil {
		return "", f, err
	}
	f.Limit = int(limit)
	if f.CreatedAfter, err = queryTime(q.Get("created_after"), "created_after"); err != nil {
		return "", f, err
	}
	if f.CreatedBefore, err = queryTime(q.Get("created_before"), "created_before"); err != nil {
		return "", f, err
	}
	return "", f, nil
}

func (a *API) claimInstances(w http.ResponseWriter, r *http.Request) {
	var req model.InstanceClaimRequest
	if p := decode(w, r, MaxBody, &req); p != nil {
		writeProblem(w, *p)
		return
	}
	ans, err := a.flows.ClaimDetailed(r.Context(), req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ans)
}

// advanceMany applies a batch of decisions with one commit; each gets its
// own status, as POST /v1/worker/instances/{id}/advance would have
// answered it (200, 404, 409, 422).
func (a *API) advanceMany(w http.ResponseWriter, r *http.Request) {
	var b wire.AdvanceBatch
	if p := decode(w, r, MaxBatchBody, &b, itemCap{"advances", wire.MaxAdvances}); p != nil {
		writeProblem(w, *p)
		return
	}
	res, err := a.flows.AdvanceMany(r.Context(), b.Advances)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	out := wire.AdvanceResults{Results: make([]wire.AdvanceResult, len(res))}
	for i, x := range res {
		ar := wire.AdvanceResult{InstanceID: b.Advances[i].InstanceID, Status: http.StatusOK}
		if x.Err == nil {
			inst := x.Instance
			ar.Instance = &inst
		} else if status, ok := refusal(x.Err); ok {
			ar.Status, ar.Error = status, x.Err.Error()
		} else {
			a.writeError(w, r, x.Err)
			return
		}
		out.Results[i] = ar
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) advance(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var adv model.Advance
	if p := decode(w, r, MaxBatchBody, &adv); p != nil {
		writeProblem(w, *p)
		return
	}
	if adv.InstanceID != id {
		a.writeError(w, r, model.Invalid("instance_id", "body says %d, path %d", adv.InstanceID, id))
		return
	}
	inst, err := a.flows.Advance(r.Context(), adv)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, inst)
}

func (a *API) workerHeartbeat(w http.ResponseWriter, r *http.Request) {
	var req model.InstanceLeases
	if p := decode(w, r, MaxBody, &req); p != nil {
		writeProblem(w, *p)
		return
	}
	lost, err := a.flows.Heartbeat(r.Context(), req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.LostLeases{Lost: lost})
}

func (a *API) workerRelease(w http.ResponseWriter, r *http.Request) {
	var req model.InstanceLeases
	if p := decode(w, r, MaxBody, &req); p != nil {
		writeProblem(w, *p)
		return
	}
	if err := a.flows.Release(r.Context(), req); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
