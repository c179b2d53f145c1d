package processor

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// fakeServer is an in-memory stand-in for the claim, heartbeat, progress,
// completion, release and presence endpoints: a test double for the
// processor's own logic, not a model of the real server.
type fakeServer struct {
	url string

	mu         sync.Mutex
	nextID     int64
	jobs       map[int64]*fakeJob
	queue      []int64
	work       chan struct{} // closed and replaced when work is queued
	changed    chan struct{} // closed and replaced on every event
	events     []event
	claims     int
	processors map[string]model.Processor
	// completeHook, when set, may answer a completion with a status
	// instead (0: handle it); n counts completion requests for the job.
	completeHook func(id int64, n int) int
	completes    map[int64]int
	// resultXorError makes the server refuse a completion with both a
	// result and an error, as the real one does.
	resultXorError bool
}

type fakeJob struct {
	job    model.Job
	cancel bool // cancel asked
	lost   bool // the lease was taken away
}

// event is something the processor did to the server.
type event struct {
	kind     string // claim, complete, release, progress, presence, log
	id       int64
	slots    map[string]int // a claim's
	key      string         // Idempotency-Key
	comp     model.Completion
	progress int
	message  string
	proc     model.Processor
}

func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	fs := &fakeServer{
		jobs: map[int64]*fakeJob{}, work: make(chan struct{}), changed: make(chan struct{}),
		processors: map[string]model.Processor{}, completes: map[int64]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /v1/processors/{id}", fs.putProcessor)
	mux.HandleFunc("POST /v1/claims", fs.claim)
	mux.HandleFunc("POST /v1/heartbeats", fs.heartbeats)
	mux.HandleFunc("POST /v1/jobs/{id}/progress", fs.progress)
	mux.HandleFunc("POST /v1/jobs/{id}/complete", fs.complete)
	mux.HandleFunc("POST /v1/completions", fs.completeMany)
	mux.HandleFunc("POST /v1/jobs/{id}/release", fs.release)
	mux.HandleFunc("POST /v1/jobs/{id}/logs", fs.logs)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	fs.url = srv.URL
	return fs
}

// add queues a job and returns its id.
func (fs *fakeServer) add(typ string, timeout time.Duration) int64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.nextID++
	id := fs.nextID
	fs.jobs[id] = &fakeJob{job: model.Job{
		ID: id, Type: typ, Params: json.RawMessage(`{}`), State: model.JobQueued,
		MaxAttempts: 3, Timeout: model.Duration(timeout),
	}}
	fs.queue = append(fs.queue, id)
	close(fs.work)
	fs.work = make(chan struct{})
	return id
}

// askCancel asks for a running job to stop, as POST /v1/jobs/{id}/cancel.
func (fs *fakeServer) askCancel(id int64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.jobs[id].cancel = true
}

// steal takes a job's lease away, as if it had expired and been claimed
// elsewhere.
func (fs *fakeServer) steal(id int64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.jobs[id].lost = true
}

// requeue puts a running job back in the queue, as the server's rescue
// of an expired lease does.
func (fs *fakeServer) requeue(id int64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.jobs[id].job.State = model.JobQueued
	fs.queue = append(fs.queue, id)
	close(fs.work)
	fs.work = make(chan struct{})
}

func (fs *fakeServer) claimCount() int {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.claims
}

// record adds an event and wakes waiters. Callers hold fs.mu.
func (fs *fakeServer) record(e event) {
	fs.events = append(fs.events, e)
	close(fs.changed)
	fs.changed = make(chan struct{})
}

// eventsOf returns the events of one kind.
func (fs *fakeServer) eventsOf(kind string) []event {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var out []event
	for _, e := range fs.events {
		if e.kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// waitFor waits until cond holds on the events so far, failing the test
// after 10s.
func (fs *fakeServer) waitFor(t *testing.T, what string, cond func([]event) bool) []event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		fs.mu.Lock()
		evs, changed := append([]event(nil), fs.events...), fs.changed
		fs.mu.Unlock()
		if cond(evs) {
			return evs
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// count returns a condition: at least n events of kind (for job id, if
// non-zero).
func count(kind string, id int64, n int) func([]event) bool {
	return func(evs []event) bool {
		c := 0
		for _, e := range evs {
			if e.kind == kind && (id == 0 || e.id == id) {
				c++
			}
		}
		return c >= n
	}
}

func (fs *fakeServer) putProcessor(w http.ResponseWriter, r *http.Request) {
	var p model.Processor
	if !decode(w, r, &p) {
		return
	}
	fs.mu.Lock()
	fs.processors[p.ID] = p
	fs.record(event{kind: "presence", proc: p})
	fs.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (fs *fakeServer) claim(w http.ResponseWriter, r *http.Request) {
	var req model.ClaimRequest
	if !decode(w, r, &req) {
		return
	}
	fs.mu.Lock()
	fs.claims++
	fs.record(event{kind: "claim", slots: req.Slots})
	fs.mu.Unlock()
	deadline := time.NewTimer(req.Wait.D())
	defer deadline.Stop()
	for {
		fs.mu.Lock()
		jobs := fs.take(req)
		work := fs.work
		fs.mu.Unlock()
		if len(jobs) > 0 {
			writeJSON(w, http.StatusOK, wire.JobList{Jobs: jobs})
			return
		}
		select {
		case <-work:
		case <-deadline.C:
			writeJSON(w, http.StatusOK, wire.JobList{Jobs: []model.Job{}})
			return
		case <-r.Context().Done():
			return
		}
	}
}

// take claims queued jobs for req, FIFO. Callers hold fs.mu.
func (fs *fakeServer) take(req model.ClaimRequest) []model.Job {
	left := map[string]int{}
	for t, n := range req.Slots {
		left[t] = n
	}
	var out []model.Job
	rest := fs.queue[:0]
	for _, id := range fs.queue {
		j := fs.jobs[id]
		if left[j.job.Type] <= 0 {
			rest = append(rest, id)
			continue
		}
		left[j.job.Type]--
		j.job.State = model.JobRunning
		j.job.Attempt++
		j.job.Epoch++
		j.job.Processor = req.Processor
		j.lost = false
		out = append(out, j.job)
	}
	fs.queue = rest
	return out
}

// lease says what a heartbeat for id under epoch gets. Callers hold fs.mu.
func (fs *fakeServer) lease(id, epoch int64) model.LeaseStatus {
	j := fs.jobs[id]
	switch {
	case j == nil || j.lost || j.job.State != model.JobRunning || j.job.Epoch != epoch:
		return model.LeaseLost
	case j.cancel:
		return model.LeaseCanceled
	}
	return model.LeaseOK
}

func (fs *fakeServer) heartbeats(w http.ResponseWriter, r *http.Request) {
	var req wire.HeartbeatRequest
	if !decode(w, r, &req) {
		return
	}
	fs.mu.Lock()
	var res wire.HeartbeatResponse
	for _, b := range req.Jobs {
		st := fs.lease(b.ID, b.Epoch)
		if st != model.LeaseLost && b.Progress != nil {
			fs.record(event{kind: "progress", id: b.ID, progress: *b.Progress, message: b.Message})
		}
		res.Jobs = append(res.Jobs, model.HeartbeatResult{ID: b.ID, Status: st})
	}
	fs.mu.Unlock()
	writeJSON(w, http.StatusOK, res)
}

func (fs *fakeServer) progress(w http.ResponseWriter, r *http.Request) {
	var b model.Heartbeat
	if !decode(w, r, &b) {
		return
	}
	fs.mu.Lock()
	st := fs.lease(pathID(r), b.Epoch)
	if st != model.LeaseLost && b.Progress != nil {
		fs.record(event{kind: "progress", id: pathID(r), progress: *b.Progress, message: b.Message})
	}
	fs.mu.Unlock()
	if st == model.LeaseLost {
		writeJSON(w, http.StatusConflict, wire.Problem{Title: "Conflict", Status: 409, Detail: "lease lost"})
		return
	}
	writeJSON(w, http.StatusOK, model.HeartbeatResult{ID: pathID(r), Status: st})
}

// logs records each log line as an event (message: level and text).
func (fs *fakeServer) logs(w http.ResponseWriter, r *http.Request) {
	var b wire.LogAppend
	if !decode(w, r, &b) {
		return
	}
	fs.mu.Lock()
	for _, l := range b.Lines {
		fs.record(event{kind: "log", id: pathID(r), message: l.Level + " " + l.Message})
	}
	fs.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (fs *fakeServer) complete(w http.ResponseWriter, r *http.Request) {
	var c model.Completion
	if !decode(w, r, &c) {
		return
	}
	c.ID = pathID(r)
	status, body := fs.completeOne(c, r.Header.Get("Idempotency-Key"))
	writeJSON(w, status, body)
}

// completeMany is the group-commit endpoint: each item is answered as
// completeOne would; a 5xx for any item fails the whole call, as a failed
// transaction would.
func (fs *fakeServer) completeMany(w http.ResponseWriter, r *http.Request) {
	var b wire.CompletionBatch
	if !decode(w, r, &b) {
		return
	}
	out := wire.CompletionResults{}
	for _, bc := range b.Completions {
		c := bc.Completion
		c.ID = bc.ID
		status, body := fs.completeOne(c, r.Header.Get("Idempotency-Key"))
		if status >= 500 || status == http.StatusUnprocessableEntity {
			writeJSON(w, status, body)
			return
		}
		cr := wire.CompletionResult{ID: c.ID, Status: status}
		if j, ok := body.(model.Job); ok {
			cr.Job = &j
		} else if p, ok := body.(wire.Problem); ok {
			cr.Error = p.Detail
		}
		out.Results = append(out.Results, cr)
	}
	writeJSON(w, http.StatusOK, out)
}

func (fs *fakeServer) completeOne(c model.Completion, key string) (int, any) {
	id := c.ID
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.completes[id]++
	if fs.completeHook != nil {
		if st := fs.completeHook(id, fs.completes[id]); st != 0 {
			fs.record(event{kind: "complete-refused", id: id, key: key})
			return st, wire.Problem{Title: http.StatusText(st), Status: st}
		}
	}
	if fs.resultXorError && len(c.Result) > 0 && c.Error != "" {
		return http.StatusUnprocessableEntity, wire.Problem{Title: "invalid input", Status: 422,
			Detail: "give a result or an error, not both", Field: "result"}
	}
	j := fs.jobs[id]
	if j != nil && j.job.State.Final() && j.job.Epoch == c.Epoch {
		// A repeat of the report that took effect (its answer was lost):
		// answered like the first time, as the real store does.
		return http.StatusOK, j.job
	}
	if fs.lease(id, c.Epoch) == model.LeaseLost {
		return http.StatusConflict, wire.Problem{Title: "Conflict", Status: 409, Detail: "stale epoch"}
	}
	switch {
	case c.Error == "":
		j.job.State = model.JobSucceeded
	case j.cancel:
		j.job.State = model.JobCanceled
	default:
		j.job.State = model.JobFailed
	}
	j.job.Result, j.job.Error = c.Result, c.Error
	fs.record(event{kind: "complete", id: id, comp: c, key: key})
	return http.StatusOK, j.job
}

func (fs *fakeServer) release(w http.ResponseWriter, r *http.Request) {
	var req wire.ReleaseRequest
	if !decode(w, r, &req) {
		return
	}
	id := pathID(r)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.lease(id, req.Epoch) == model.LeaseLost {
		writeJSON(w, http.StatusConflict, wire.Problem{Title: "Conflict", Status: 409})
		return
	}
	j := fs.jobs[id]
	j.job.State = model.JobQueued
	fs.record(event{kind: "release", id: id})
	writeJSON(w, http.StatusOK, j.job)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, wire.Problem{Title: "Bad Request", Status: 400, Detail: err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	ct := "application/json"
	if status >= 400 {
		ct = "application/problem+json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func pathID(r *http.Request) int64 {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	return id
}
