package scheduler

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/trigger"
	"github.com/dpe-engine/dpe/internal/wire"
)

// fakeServer implements, in memory, what the scheduler relies on: the
// trigger endpoints (GET state; POST fire applied atomically with unique
// instance names, overlap and throttle, "last" kept at its maximum, no
// state stored when a wait-mode throttle stops the batch) and the lease
// endpoints of standby mode.
type fakeServer struct {
	t   testing.TB
	srv *httptest.Server

	mu        sync.Mutex
	triggers  map[string]*fakeTrigger
	instances map[string]*fakeInstance // by name
	order     []string                 // instance names in creation order
	records   []model.TriggerRecord
	leases    map[string]model.Lease
	down      bool // every trigger call answers 500
	calls     int  // trigger calls (get and fire)
}

type fakeTrigger struct {
	kind  string
	last  time.Time
	state json.RawMessage
}

type fakeInstance struct {
	id      int64
	trigger string
	start   model.Start
	running bool
}

func newFakeServer(t testing.TB) *fakeServer {
	f := &fakeServer{t: t, triggers: map[string]*fakeTrigger{}, instances: map[string]*fakeInstance{}, leases: map[string]model.Lease{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/triggers/{name}", f.get)
	mux.HandleFunc("POST /v1/triggers/{name}/fire", f.fire)
	mux.HandleFunc("POST /v1/leases/acquire", f.acquire)
	mux.HandleFunc("POST /v1/leases/release", f.release)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(wire.Problem{Title: http.StatusText(status), Status: status, Detail: detail})
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeServer) view(name string, tr *fakeTrigger) model.Trigger {
	return model.Trigger{Name: name, Kind: tr.kind, State: tr.state}
}

func (f *fakeServer) get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		problem(w, 500, "database down")
		return
	}
	name := r.PathValue("name")
	tr, ok := f.triggers[name]
	if !ok {
		problem(w, 404, "no trigger "+name)
		return
	}
	reply(w, f.view(name, tr))
}

func (f *fakeServer) fire(w http.ResponseWriter, r *http.Request) {
	var req model.FireRequest
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil {
		problem(w, 400, err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.down {
		problem(w, 500, "database down")
		return
	}
	name := r.PathValue("name")
	if req.Kind != model.TriggerSchedule || req.Fires == nil {
		problem(w, 400, "bad kind or no fires")
		return
	}
	tr, ok := f.triggers[name]
	if !ok {
		tr = &fakeTrigger{kind: req.Kind}
		f.triggers[name] = tr
	}
	var recs []model.TriggerRecord
	for _, s := range req.Fires {
		if !s.Skip && (s.Instance.Name == "" || s.Instance.Template == "") {
			problem(w, 400, "start without instance name or template")
			return
		}
		rec := model.TriggerRecord{Trigger: name, Key: s.Key, Event: s.Event, Instance: s.Instance.Name, Reason: s.Reason}
		running := 0
		for _, in := range f.instances {
			if in.trigger == name && in.running {
				running++
			}
		}
		in, exists := f.instances[s.Instance.Name]
		switch {
		case s.Skip:
			rec.Action = model.RecordSkipped
		case exists:
			rec.Action, rec.InstanceID = model.RecordExisting, in.id
		case req.Overlap == OverlapSkip && running > 0:
			rec.Action = model.RecordOverlap
		case req.Throttle > 0 && running >= req.Throttle:
			rec.Action = model.RecordThrottled
			if req.ThrottleMode == ThrottleWait {
				// Stop here: this fire and later ones stay unconsumed,
				// and the state is not stored.
				recs = append(recs, rec)
				f.records = append(f.records, recs...)
				reply(w, model.TriggerResult{Records: recs, Trigger: f.view(name, tr)})
				return
			}
		default:
			id := int64(len(f.instances) + 1)
			f.instances[s.Instance.Name] = &fakeInstance{id: id, trigger: name, start: s, running: true}
			f.order = append(f.order, s.Instance.Name)
			rec.Action, rec.InstanceID = model.RecordStarted, id
		}
		recs = append(recs, rec)
	}
	if len(req.State) > 0 {
		last, ok, err := parseState(req.State)
		if err != nil {
			problem(w, 400, err.Error())
			return
		}
		if ok && last.After(tr.last) { // "last" never goes backwards
			tr.last, tr.state = last, req.State
		}
		// The config it reports is kept, whatever last does.
		var sent, stored map[string]json.RawMessage
		if json.Unmarshal(req.State, &sent) == nil && sent["spec"] != nil {
			_ = json.Unmarshal(tr.state, &stored)
			if stored == nil {
				stored = map[string]json.RawMessage{}
			}
			stored["spec"] = sent["spec"]
			tr.state, _ = json.Marshal(stored)
		}
	}
	f.records = append(f.records, recs...)
	reply(w, model.TriggerResult{Records: recs, Trigger: f.view(name, tr)})
}

type fakeLeaseRequest struct {
	Name   string         `json:"name"`
	Holder string         `json:"holder"`
	TTL    model.Duration `json:"ttl"`
}

func (f *fakeServer) acquire(w http.ResponseWriter, r *http.Request) {
	var req fakeLeaseRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		problem(w, 400, err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l, held := f.leases[req.Name]
	if held && l.Holder != req.Holder && time.Now().Before(l.Until) {
		problem(w, 409, "held by "+l.Holder)
		return
	}
	if !held || l.Holder != req.Holder {
		l = model.Lease{Name: req.Name, Holder: req.Holder, Epoch: l.Epoch + 1}
	}
	l.Until = time.Now().Add(req.TTL.D())
	f.leases[req.Name] = l
	reply(w, l)
}

func (f *fakeServer) release(w http.ResponseWriter, r *http.Request) {
	var req fakeLeaseRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		problem(w, 400, err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if l, ok := f.leases[req.Name]; ok && l.Holder == req.Holder {
		delete(f.leases, req.Name)
	}
	w.WriteHeader(http.StatusNoContent)
}

// setLast stores a schedule's state as if it had run before.
func (f *fakeServer) setLast(name string, last time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.triggers[name] = &fakeTrigger{kind: model.TriggerSchedule, last: last, state: lastOnly(last)}
}

// last returns a schedule's stored "last" (zero when none).
func (f *fakeServer) last(name string) time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if tr, ok := f.triggers[name]; ok {
		return tr.last
	}
	return time.Time{}
}

func (f *fakeServer) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

// finish marks an instance final, freeing a throttle or overlap slot.
func (f *fakeServer) finish(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.instances[name]
	if !ok {
		f.t.Fatalf("finish %s: no such instance", name)
	}
	in.running = false
}

// instanceNames returns the created instances' names in creation order.
func (f *fakeServer) instanceNames() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.order...)
}

func (f *fakeServer) instance(name string) *fakeInstance {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.instances[name]
}

// recordsOf returns the records with the given action, in order.
func (f *fakeServer) recordsOf(action string) []model.TriggerRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []model.TriggerRecord
	for _, r := range f.records {
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

func (f *fakeServer) triggerCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// newClient returns a client of f; closed at the end of the test.
func (f *fakeServer) newClient(t testing.TB) *client.Client {
	c, err := client.New(client.Config{URLs: []string{f.srv.URL}, Deadline: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// testLog writes warnings and errors to the test's output.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// startScheduler runs a scheduler until the returned stop is called (or
// the test ends); stop waits for Run to return and checks its error.
func startScheduler(t testing.TB, o Options) (stop func()) {
	t.Helper()
	if o.Log == nil {
		o.Log = testLog(t)
	}
	s, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func concurrent() trigger.Mode { return trigger.Mode{Mode: trigger.Concurrent} }

// names returns InstanceName for each fire time.
func names(schedule string, times ...time.Time) []string {
	out := make([]string, len(times))
	for i, t := range times {
		out[i] = InstanceName(schedule, t)
	}
	return out
}

// minutes returns base+from·m ... base+to·m.
func minutes(base time.Time, from, to int) []time.Time {
	var out []time.Time
	for i := from; i <= to; i++ {
		out = append(out, base.Add(time.Duration(i)*time.Minute))
	}
	return out
}

func keysOf(recs []model.TriggerRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.Key
	}
	return out
}

func join(ss []string) string { return strings.Join(ss, "\n") }

// lastOnly is the state of a schedule run before by a scheduler that
// reported no config.
func lastOnly(last time.Time) json.RawMessage {
	b, _ := json.Marshal(state{Last: last.UTC().Format(time.RFC3339Nano)})
	return b
}

// state returns a trigger's stored state.
func (f *fakeServer) state(name string) json.RawMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	if tr, ok := f.triggers[name]; ok {
		return tr.state
	}
	return nil
}
