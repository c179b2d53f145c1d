package tablewatcher

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// fakeServer is the part of the dpe server a table watcher talks to. It
// keeps each trigger's mirror (key → fingerprint) and state, and counts
// events as the real server decides them:
//
//   - an item not in the mirror is created (baseline while the trigger has
//     no state and first_start is baseline), a known one with another
//     fingerprint is updated, a Deleted item in the mirror is deleted;
//   - a pass begins with its first page; its Complete page deletes the
//     entries not seen (by any observation) since it began;
//   - State is stored with the page.
type fakeServer struct {
	srv *httptest.Server

	mu       sync.Mutex
	triggers map[string]*fakeTrigger
	leases   map[string]string // name → holder
	released []string          // lease names released
	reject   bool              // answer observations with 422
}

type fakeTrigger struct {
	state     json.RawMessage
	mirror    map[string]fakeEntry
	passStart map[string]int64
	seq       int64
	events    map[string]int // created, updated, deleted, baseline
	obs       []model.Observation
	errMsg    string
	errSets   int // error reports with a message
}

type fakeEntry struct {
	fp   string
	seen int64
	data map[string]any
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	f := &fakeServer{triggers: map[string]*fakeTrigger{}, leases: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/triggers/{name}", f.get)
	mux.HandleFunc("POST /v1/triggers/{name}/observe", f.observe)
	mux.HandleFunc("POST /v1/triggers/{name}/error", f.error)
	mux.HandleFunc("POST /v1/leases/acquire", f.acquire)
	mux.HandleFunc("POST /v1/leases/release", f.release)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// client returns a client of f that gives up quickly.
func (f *fakeServer) client(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{URLs: []string{f.srv.URL}, Deadline: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func (f *fakeServer) trigger(name string) *fakeTrigger {
	tr := f.triggers[name]
	if tr == nil {
		tr = &fakeTrigger{mirror: map[string]fakeEntry{}, passStart: map[string]int64{}, events: map[string]int{}}
		f.triggers[name] = tr
	}
	return tr
}

// snapshot returns a copy of the trigger's event counts, mirror
// (key → fingerprint), observations and error.
func (f *fakeServer) snapshot(name string) (events map[string]int, mirror map[string]string, obs []model.Observation, errMsg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tr := f.trigger(name)
	events = map[string]int{}
	for k, v := range tr.events {
		events[k] = v
	}
	mirror = map[string]string{}
	for k, e := range tr.mirror {
		mirror[k] = e.fp
	}
	return events, mirror, append([]model.Observation(nil), tr.obs...), tr.errMsg
}

func (f *fakeServer) get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tr, ok := f.triggers[r.PathValue("name")]
	if !ok || tr.state == nil {
		writeJSON(w, http.StatusNotFound, wire.Problem{Title: "not found", Status: http.StatusNotFound})
		return
	}
	writeJSON(w, http.StatusOK, model.Trigger{Name: r.PathValue("name"), Kind: model.TriggerTable, State: tr.state, Mirrored: len(tr.mirror)})
}

func (f *fakeServer) observe(w http.ResponseWriter, r *http.Request) {
	var o model.Observation
	if err := json.NewDecoder(r.Body).Decode(&o); err != nil {
		writeJSON(w, http.StatusBadRequest, wire.Problem{Title: err.Error(), Status: http.StatusBadRequest})
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.reject {
		writeJSON(w, http.StatusUnprocessableEntity, wire.Problem{Title: "rejected", Status: http.StatusUnprocessableEntity})
		return
	}
	tr := f.trigger(r.PathValue("name"))
	tr.obs = append(tr.obs, o)
	tr.seq++
	now := tr.seq
	if o.Pass != "" {
		if _, ok := tr.passStart[o.Pass]; !ok {
			tr.passStart[o.Pass] = now
		}
	}
	baseline := tr.state == nil && o.FirstStart == FirstStartBaseline
	var recs []model.TriggerRecord
	event := func(ev, key string) {
		tr.events[ev]++
		recs = append(recs, model.TriggerRecord{Key: key, Event: ev, Action: model.RecordStarted})
	}
	for _, it := range o.Items {
		e, ok := tr.mirror[it.Key]
		switch {
		case it.Deleted:
			if ok {
				delete(tr.mirror, it.Key)
				event(EventDeleted, it.Key)
			}
			continue
		case !ok && baseline:
			tr.events["baseline"]++
		case !ok:
			event(EventCreated, it.Key)
		case e.fp != it.Fingerprint:
			event(EventUpdated, it.Key)
		}
		tr.mirror[it.Key] = fakeEntry{fp: it.Fingerprint, seen: now, data: it.Data}
	}
	if o.Complete {
		start := tr.passStart[o.Pass]
		for k, e := range tr.mirror {
			if e.seen < start {
				delete(tr.mirror, k)
				event(EventDeleted, k)
			}
		}
		delete(tr.passStart, o.Pass)
	}
	if len(o.State) > 0 {
		tr.state = o.State
	}
	writeJSON(w, http.StatusOK, model.TriggerResult{Records: recs})
}

func (f *fakeServer) error(w http.ResponseWriter, r *http.Request) {
	var rep struct{ Error string }
	_ = json.NewDecoder(r.Body).Decode(&rep)
	f.mu.Lock()
	defer f.mu.Unlock()
	tr := f.trigger(r.PathValue("name"))
	tr.errMsg = rep.Error
	if rep.Error != "" {
		tr.errSets++
	}
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeServer) acquire(w http.ResponseWriter, r *http.Request) {
	var req struct{ Name, Holder string }
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if h, ok := f.leases[req.Name]; ok && h != req.Holder {
		writeJSON(w, http.StatusConflict, wire.Problem{Title: "lease held", Status: http.StatusConflict})
		return
	}
	f.leases[req.Name] = req.Holder
	writeJSON(w, http.StatusOK, model.Lease{Name: req.Name, Holder: req.Holder, Epoch: 1, Until: time.Now().Add(time.Minute)})
}

func (f *fakeServer) release(w http.ResponseWriter, r *http.Request) {
	var req struct{ Name, Holder string }
	_ = json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leases[req.Name] == req.Holder {
		delete(f.leases, req.Name)
		f.released = append(f.released, req.Name)
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	if status >= 400 {
		w.Header().Set("Content-Type", "application/problem+json")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
