package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

func (a *API) triggerRoutes() {
	a.handle("POST /v1/triggers/{name}/fire", a.fire)
	a.handle("POST /v1/triggers/{name}/observe", a.observe)
	a.handle("POST /v1/triggers/{name}/error", a.triggerError)
	a.handle("GET /v1/triggers", a.listTriggers)
	a.handle("GET /v1/triggers/{name}", a.getTrigger)
	a.handle("GET /v1/triggers/{name}/records", a.triggerRecords)
	a.handle("POST /v1/triggers/{name}/pause", a.pauseTrigger(true))
	a.handle("POST /v1/triggers/{name}/resume", a.pauseTrigger(false))
	// Idempotent: each fire now names its instance by the time, so a
	// retried call would start a second one.
	a.handle("POST /v1/triggers/{name}/fire-now", a.idempotent(a.fireNow))
}

// pauseTrigger pauses or resumes a trigger and answers it.
func (a *API) pauseTrigger(paused bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, err := a.triggers.Pause(r.Context(), r.PathValue("name"), paused)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, t)
	}
}

// fireNow starts one instance of a schedule now, as `dpe
// schedule fire` does, from the config its scheduler reported.
func (a *API) fireNow(w http.ResponseWriter, r *http.Request) {
	res, err := a.triggers.FireNow(r.Context(), r.PathValue("name"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *API) fire(w http.ResponseWriter, r *http.Request) {
	var req model.FireRequest
	if p := decode(w, r, MaxBatchBody, &req, itemCap{"fires", wire.MaxFires}); p != nil {
		writeProblem(w, *p)
		return
	}
	res, err := a.triggers.Fire(r.Context(), r.PathValue("name"), req)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *API) observe(w http.ResponseWriter, r *http.Request) {
	var o model.Observation
	if p := decode(w, r, MaxBatchBody, &o, itemCap{"items", wire.MaxItems}); p != nil {
		writeProblem(w, *p)
		return
	}
	res, err := a.triggers.Observe(r.Context(), r.PathValue("name"), o)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (a *API) triggerError(w http.ResponseWriter, r *http.Request) {
	var req wire.ErrorReport
	if p := decode(w, r, MaxBody, &req); p != nil {
		writeProblem(w, *p)
		return
	}
	if err := a.triggers.SetError(r.Context(), r.PathValue("name"), req.Kind, req.Error); err != nil {
		a.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) listTriggers(w http.ResponseWriter, r *http.Request) {
	list, err := a.triggerList(r.Context())
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.Items[model.Trigger]{Items: list})
}

// triggerList lists the triggers with how their copies run them: the
// holder of a live standby lease "trigger/<name>" or
// "trigger/<group>/<name>" is the active copy (mode standby); a live
// concurrent lease (model.TriggerConcurrentLease) says every copy acts
// (mode concurrent).
func (a *API) triggerList(ctx context.Context) ([]model.Trigger, error) {
	list, err := a.triggers.List(ctx)
	if err != nil {
		return nil, err
	}
	leases, err := a.store.LeaseList(ctx, "trigger/")
	if err != nil {
		return nil, err
	}
	concurrent, err := a.store.LeaseList(ctx, model.TriggerConcurrentLease)
	if err != nil {
		return nil, err
	}
	now := a.clock.Now()
	for i := range list {
		for _, l := range leases {
			n := strings.TrimPrefix(l.Name, "trigger/")
			if (n == list[i].Name || strings.HasSuffix(n, "/"+list[i].Name)) && l.Holder != "" && l.Until.After(now) {
				list[i].Active = l.Holder
				list[i].Mode = model.TriggerStandby
			}
		}
		for _, l := range concurrent {
			if l.Name == model.TriggerConcurrentLease+list[i].Name && l.Holder != "" && l.Until.After(now) && list[i].Mode == "" {
				list[i].Mode = model.TriggerConcurrent
			}
		}
	}
	return list, nil
}

func (a *API) getTrigger(w http.ResponseWriter, r *http.Request) {
	t, err := a.triggers.Get(r.Context(), r.PathValue("name"))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (a *API) triggerRecords(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	list, err := a.triggers.Records(r.Context(), r.PathValue("name"), limit)
	if err == nil && len(list) == 0 {
		// No records: say whether the trigger exists at all (404 names it).
		_, err = a.triggers.Get(r.Context(), r.PathValue("name"))
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.Items[model.TriggerRecord]{Items: list})
}
