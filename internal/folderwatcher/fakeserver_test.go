package folderwatcher

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// fakeServer plays the server's side of observations, as the real one is
// meant to: a mirror per trigger compared with each page, deterministic
// instance names so that two watchers start one instance per event, and
// Complete forgetting (as deleted) what a pass did not list.
type fakeServer struct {
	srv *httptest.Server

	mu        sync.Mutex
	mirror    map[string]map[string]mirrored // trigger → key → entry
	baselined map[string]bool                // trigger → its first start is over
	seq       int64                          // counts applied items
	passes    map[string]*passState
	started   map[string]bool // instance names
	events    []string        // "created a.wav" in start order
	data      []map[string]any
	pages     []page
	errs      []string // error reports, "" = cleared
	fail      int      // fail that many observe calls with 500
	bodies    bool     // keep observations in pages
	leases    int      // lease acquisitions
	// startedCh receives each started event, when it has room.
	startedCh chan string
	// pageCh is signalled after each page.
	pageCh chan struct{}
}

type mirrored struct {
	fp      string
	data    map[string]any
	touched int64 // seq when last stored or confirmed
}

type passState struct {
	start int64
	seen  map[string]bool
}

// page is what the fake recorded of one observe call.
type page struct {
	Trigger                          string
	Pass                             string
	Complete, Incremental            bool
	Items, Stable, Unstable, Deleted int
	FirstStart                       string
	DryRun                           bool
	Obs                              *model.Observation // when bodies
}

func newFakeServer(t testing.TB) *fakeServer {
	f := &fakeServer{
		mirror: map[string]map[string]mirrored{}, baselined: map[string]bool{},
		passes: map[string]*passState{}, started: map[string]bool{},
		startedCh: make(chan string, 64), pageCh: make(chan struct{}, 1),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/triggers/{name}/observe", f.observe)
	mux.HandleFunc("POST /v1/triggers/{name}/error", f.error)
	mux.HandleFunc("POST /v1/leases/acquire", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Name, Holder string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		f.leases++
		f.mu.Unlock()
		writeJSON(w, model.Lease{Name: req.Name, Holder: req.Holder, Epoch: 1, Until: time.Now().Add(time.Minute)})
	})
	mux.HandleFunc("POST /v1/leases/release", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) error(w http.ResponseWriter, r *http.Request) {
	var rep wire.ErrorReport
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil || rep.Kind != model.TriggerFolder {
		http.Error(w, fmt.Sprintf("bad error report %+v: %v", rep, err), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.errs = append(f.errs, rep.Error)
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (f *fakeServer) observe(w http.ResponseWriter, r *http.Request) {
	var o model.Observation
	if err := json.NewDecoder(r.Body).Decode(&o); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	name := r.PathValue("name")
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		http.Error(w, "injected failure", http.StatusInternalServerError)
		return
	}
	if o.Kind != model.TriggerFolder || len(o.Items) > PageSize || (o.Incremental && (o.Pass != "" || o.Complete)) || (!o.Incremental && o.Pass == "") {
		http.Error(w, "malformed observation", http.StatusBadRequest)
		return
	}
	pg := page{Trigger: name, Pass: o.Pass, Complete: o.Complete, Incremental: o.Incremental, Items: len(o.Items), FirstStart: o.FirstStart, DryRun: o.DryRun}
	if f.bodies {
		pg.Obs = &o
	}
	m := f.mirror[name]
	if m == nil {
		m = map[string]mirrored{}
		f.mirror[name] = m
	}
	var ps *passState
	if o.Pass != "" {
		if ps = f.passes[o.Pass]; ps == nil {
			ps = &passState{start: f.seq, seen: map[string]bool{}}
			f.passes[o.Pass] = ps
		}
	}
	// Baseline applies to what the trigger's first pass lists.
	baseline := o.FirstStart == FirstStartBaseline && !f.baselined[name] && ps != nil
	var recs []model.TriggerRecord
	for _, it := range o.Items {
		f.seq++
		switch {
		case it.Deleted:
			pg.Deleted++
			if old, ok := m[it.Key]; ok {
				delete(m, it.Key)
				recs = append(recs, f.start(name, o, model.ObservedItem{Key: it.Key, Fingerprint: old.fp, Data: old.data}, EventDeleted)...)
			}
		case it.Unstable:
			pg.Unstable++
			if ps != nil {
				ps.seen[it.Key] = true
			}
		default:
			pg.Stable++
			if ps != nil {
				ps.seen[it.Key] = true
			}
			old, ok := m[it.Key]
			m[it.Key] = mirrored{fp: it.Fingerprint, data: it.Data, touched: f.seq}
			switch {
			case baseline && !ok:
			case !ok:
				recs = append(recs, f.start(name, o, it, EventCreated)...)
			case old.fp != it.Fingerprint:
				recs = append(recs, f.start(name, o, it, EventUpdated)...)
			}
		}
	}
	if o.Complete {
		keys := make([]string, 0)
		for k, e := range m {
			if !ps.seen[k] && e.touched <= ps.start {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			old := m[k]
			delete(m, k)
			recs = append(recs, f.start(name, o, model.ObservedItem{Key: k, Fingerprint: old.fp, Data: old.data}, EventDeleted)...)
		}
		f.baselined[name] = true
		delete(f.passes, o.Pass)
	}
	f.pages = append(f.pages, pg)
	select {
	case f.pageCh <- struct{}{}:
	default:
	}
	writeJSON(w, model.TriggerResult{Records: recs, Trigger: model.Trigger{Name: name, Kind: model.TriggerFolder, Mirrored: len(m)}})
}

// start records the instance an event starts, once per deterministic
// name.
func (f *fakeServer) start(trig string, o model.Observation, it model.ObservedItem, ev string) []model.TriggerRecord {
	if _, ok := o.On[ev]; !ok {
		return nil
	}
	name := fmt.Sprintf("folder/%s/%s/%s@%s", trig, ev, it.Key, it.Fingerprint)
	rec := model.TriggerRecord{Trigger: trig, Key: it.Key + "@" + it.Fingerprint, Event: ev, Instance: name, Action: model.RecordStarted}
	switch {
	case o.DryRun:
		rec.Action = model.RecordSkipped
	case f.started[name]:
		rec.Action = model.RecordExisting
	default:
		f.started[name] = true
		f.events = append(f.events, ev+" "+it.Key)
		f.data = append(f.data, it.Data)
		select {
		case f.startedCh <- ev + " " + it.Key:
		default:
		}
	}
	return []model.TriggerRecord{rec}
}

// takeEvents returns the events started since the last call.
func (f *fakeServer) takeEvents() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	ev := f.events
	f.events, f.data = nil, nil
	return ev
}

// takePages returns the pages received since the last call.
func (f *fakeServer) takePages() []page {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pages
	f.pages = nil
	return p
}

func (f *fakeServer) takeErrors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.errs
	f.errs = nil
	return e
}

func (f *fakeServer) mirrorKeys(trig string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []string
	for k := range f.mirror[trig] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func (f *fakeServer) keepBodies(on bool) {
	f.mu.Lock()
	f.bodies = on
	f.mu.Unlock()
}

func (f *fakeServer) failNext(n int) {
	f.mu.Lock()
	f.fail = n
	f.mu.Unlock()
}

// describe summarises pages for failure messages.
func describe(ps []page) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "{pass=%q complete=%v incr=%v items=%d stable=%d unstable=%d deleted=%d} ", p.Pass, p.Complete, p.Incremental, p.Items, p.Stable, p.Unstable, p.Deleted)
	}
	return b.String()
}
