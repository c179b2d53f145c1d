package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/handlers"
	"github.com/dpe-engine/dpe/internal/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// setup returns a processor on fs with short test timings; cfg's Quota
// and Handlers are required, other zero fields get test values. The
// client gives up after clientDeadline (default 2s).
func setup(t *testing.T, fs *fakeServer, cfg Config, clientDeadline ...time.Duration) *Processor {
	t.Helper()
	deadline := 2 * time.Second
	if len(clientDeadline) > 0 {
		deadline = clientDeadline[0]
	}
	c, err := client.New(client.Config{
		URLs: []string{fs.url}, Deadline: deadline,
		Backoff: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg.Client = c
	cfg.ID = "proc-test"
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.LeaseTTL, 300*time.Millisecond)
	def(&cfg.PollWait, 200*time.Millisecond)
	def(&cfg.Grace, 2*time.Second)
	def(&cfg.PresenceEvery, time.Second)
	def(&cfg.ProgressEvery, 20*time.Millisecond)
	def(&cfg.StopWait, time.Second)
	def(&cfg.FlushTimeout, 5*time.Second)
	if testing.Verbose() {
		cfg.Log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// start runs p until the returned stop is called; stop returns Run's
// error.
func start(t *testing.T, p *Processor) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				err = errors.New("Run did not return within 20s")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// blocker is a handler that signals when it starts and runs until its ctx
// ends or it is released.
type blocker struct {
	started chan int64
	release chan struct{}
	ctxErr  chan error // the cause of ctx's end, or nil when released
	result  any
}

func newBlocker() *blocker {
	return &blocker{started: make(chan int64, 10), release: make(chan struct{}), ctxErr: make(chan error, 10)}
}

func (b *blocker) Run(ctx context.Context, t handlers.Task) (any, error) {
	b.started <- t.ID
	select {
	case <-ctx.Done():
		b.ctxErr <- context.Cause(ctx)
		return b.result, ctx.Err()
	case <-b.release:
		b.ctxErr <- ctx.Err()
		return b.result, nil
	}
}

func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestNewValidates(t *testing.T) {
	c, _ := client.New(client.Config{URLs: []string{"http://127.0.0.1:1"}})
	noop := handlers.HandlerFunc(func(context.Context, handlers.Task) (any, error) { return nil, nil })
	cases := []struct {
		cfg  Config
		want string
	}{
		{Config{Quota: map[string]int{"a": 1}, Handlers: map[string]handlers.Handler{"a": noop}}, "no client"},
		{Config{Client: c}, "no quota"},
		{Config{Client: c, Quota: map[string]int{"a": 0}, Handlers: map[string]handlers.Handler{"a": noop}}, "quota a=0"},
		{Config{Client: c, Quota: map[string]int{"a": 1, "audio.loudness": 2}, Handlers: map[string]handlers.Handler{"a": noop}},
			`"audio.loudness", which has no handler`},
		{Config{Client: c, Quota: map[string]int{"a": 1}, Handlers: map[string]handlers.Handler{"a": noop},
			Unavailable: map[string]string{"a": "ffmpeg not found"}}, `"a", which is unavailable here: ffmpeg not found`},
		{Config{Client: c, Quota: map[string]int{"a": 1}, Handlers: map[string]handlers.Handler{"a": noop}, PollWait: time.Hour}, "poll wait"},
		{Config{Client: c, Quota: map[string]int{"a": 1}, Handlers: map[string]handlers.Handler{"a": noop}, Grace: -1}, "negative grace"},
	}
	for _, tc := range cases {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New: %v, want an error containing %q", err, tc.want)
		}
	}
	p, err := New(Config{Client: c, Quota: map[string]int{"a": 1}, Handlers: map[string]handlers.Handler{"a": noop}})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID() == "" || p.cfg.LeaseTTL != DefaultLeaseTTL || p.cfg.PollWait != DefaultPollWait {
		t.Errorf("defaults not applied: %q %v %v", p.ID(), p.cfg.LeaseTTL, p.cfg.PollWait)
	}
}

func TestQuotaNeverExceeded(t *testing.T) {
	fs := newFakeServer(t)
	for range 50 {
		fs.add("work", 0)
	}
	var cur, peak atomic.Int32
	h := handlers.HandlerFunc(func(ctx context.Context, task handlers.Task) (any, error) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for {
			old := peak.Load()
			if n <= old || peak.CompareAndSwap(old, n) {
				break
			}
		}
		select { // a little work, so that runs overlap
		case <-time.After(3 * time.Millisecond):
		case <-ctx.Done():
		}
		return map[string]int64{"id": task.ID}, nil
	})
	p := setup(t, fs, Config{Quota: map[string]int{"work": 2}, Handlers: map[string]handlers.Handler{"work": h}})
	stop := start(t, p)
	fs.waitFor(t, "50 completions", count("complete", 0, 50))
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if peak.Load() != 2 {
		t.Errorf("peak concurrency %d, want 2", peak.Load())
	}
	s := p.Stats()
	if s.Completed != 50 || s.Failed != 0 || s.Held != 0 || s.Running["work"] != 0 {
		t.Errorf("stats %+v", s)
	}
	for _, e := range fs.eventsOf("complete") {
		var r map[string]int64
		if err := json.Unmarshal(e.comp.Result, &r); err != nil || r["id"] != e.id {
			t.Errorf("job %d result %s", e.id, e.comp.Result)
		}
	}
}

func TestCancelViaHeartbeatReachesHandler(t *testing.T) {
	fs := newFakeServer(t)
	id := fs.add("work", 0)
	b := newBlocker()
	p := setup(t, fs, Config{Quota: map[string]int{"work": 1}, Handlers: map[string]handlers.Handler{"work": b}})
	stop := start(t, p)
	recv(t, b.started, "handler start")
	fs.askCancel(id)
	if cause := recv(t, b.ctxErr, "handler ctx end"); !errors.Is(cause, errCancelAsked) {
		t.Errorf("handler ctx ended with %v, want the cancel", cause)
	}
	evs := fs.waitFor(t, "the canceled report", count("complete", id, 1))
	if c := lastOf(t, evs, "complete").comp; c.Error != "canceled" || c.Permanent {
		t.Errorf("completion %+v, want error \"canceled\"", c)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Failed != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestLostLeaseDropsWithoutReport(t *testing.T) {
	fs := newFakeServer(t)
	id := fs.add("work", 0)
	b := newBlocker()
	b.result = "late result"
	p := setup(t, fs, Config{Quota: map[string]int{"work": 1}, Handlers: map[string]handlers.Handler{"work": b}})
	stop := start(t, p)
	recv(t, b.started, "handler start")
	fs.steal(id)
	if cause := recv(t, b.ctxErr, "handler ctx end"); !errors.Is(cause, errLeaseLost) {
		t.Errorf("handler ctx ended with %v, want lease lost", cause)
	}
	if err := stop(); err != nil { // Run waits for the handler's end
		t.Fatal(err)
	}
	if n := len(fs.eventsOf("complete")) + len(fs.eventsOf("release")); n != 0 {
		t.Errorf("%d reports for a lost job", n)
	}
	if s := p.Stats(); s.Dropped != 1 || s.Held != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestDrain(t *testing.T) {
	fs := newFakeServer(t)
	slowID := fs.add("slow", 0)
	stuckID := fs.add("stuck", 0)
	slow, stuck := newBlocker(), newBlocker()
	slow.result = "done"
	p := setup(t, fs, Config{
		Quota:    map[string]int{"slow": 1, "stuck": 1},
		Handlers: map[string]handlers.Handler{"slow": slow, "stuck": stuck},
		Grace:    500 * time.Millisecond, PresenceEvery: model.MaxPresenceEvery,
	})
	stop := start(t, p)
	recv(t, slow.started, "slow start")
	recv(t, stuck.started, "stuck start")

	errc := make(chan error, 1)
	go func() { errc <- stop() }()
	fs.waitFor(t, "the draining announcement", func(evs []event) bool {
		for _, e := range evs {
			if e.kind == "presence" && e.proc.Draining {
				return true
			}
		}
		return false
	})
	claims := fs.claimCount()
	close(slow.release) // finishes within the grace

	if err := recv(t, errc, "Run's end"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if err := recv(t, slow.ctxErr, "slow end"); err != nil {
		t.Errorf("slow handler's ctx ended (%v) during the grace", err)
	}
	if cause := recv(t, stuck.ctxErr, "stuck end"); !errors.Is(cause, errGraceOver) {
		t.Errorf("stuck handler's ctx ended with %v", cause)
	}
	comps := fs.eventsOf("complete")
	if len(comps) != 1 || comps[0].id != slowID || comps[0].comp.Error != "" || string(comps[0].comp.Result) != `"done"` {
		t.Errorf("completions %+v, want the slow job's success", comps)
	}
	rels := fs.eventsOf("release")
	if len(rels) != 1 || rels[0].id != stuckID {
		t.Errorf("releases %+v, want the stuck job", rels)
	}
	if fs.claimCount() != claims {
		t.Errorf("claimed %d more times while draining", fs.claimCount()-claims)
	}
	if s := p.Stats(); s.Completed != 1 || s.Released != 1 || s.Held != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestHandlerIgnoringCancelIsGivenBack(t *testing.T) {
	fs := newFakeServer(t)
	id := fs.add("deaf", 0)
	started, unblock := make(chan struct{}), make(chan struct{})
	h := handlers.HandlerFunc(func(ctx context.Context, task handlers.Task) (any, error) {
		close(started)
		<-unblock // ignores ctx
		return nil, nil
	})
	p := setup(t, fs, Config{Quota: map[string]int{"deaf": 1}, Handlers: map[string]handlers.Handler{"deaf": h},
		Grace: 50 * time.Millisecond, StopWait: 50 * time.Millisecond})
	stop := start(t, p)
	<-started
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	close(unblock)
	if rels := fs.eventsOf("release"); len(rels) != 1 || rels[0].id != id {
		t.Errorf("releases %+v", rels)
	}
	// Let the abandoned goroutine end before the leak check.
	p.handlers.Wait()
}

func TestOutcomes(t *testing.T) {
	fs := newFakeServer(t)
	perm := fs.add("perm", 0)
	temp := fs.add("temp", 0)
	boom := fs.add("panic", 0)
	slow := fs.add("slow", 30*time.Millisecond)
	hs := map[string]handlers.Handler{
		"perm": handlers.HandlerFunc(func(context.Context, handlers.Task) (any, error) {
			return nil, handlers.Permanent(errors.New("bad params"))
		}),
		"temp": handlers.HandlerFunc(func(context.Context, handlers.Task) (any, error) {
			return map[string]string{"out": "x"}, errors.New("exit status 1")
		}),
		"panic": handlers.HandlerFunc(func(context.Context, handlers.Task) (any, error) {
			panic("boom")
		}),
		"slow": handlers.HandlerFunc(func(ctx context.Context, _ handlers.Task) (any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}),
	}
	p := setup(t, fs, Config{Quota: map[string]int{"perm": 1, "temp": 1, "panic": 1, "slow": 1}, Handlers: hs})
	stop := start(t, p)
	fs.waitFor(t, "four outcomes", count("complete", 0, 4))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	got := map[int64]model.Completion{}
	for _, e := range fs.eventsOf("complete") {
		got[e.id] = e.comp
	}
	if c := got[perm]; c.Error != "bad params" || !c.Permanent {
		t.Errorf("permanent: %+v", c)
	}
	if c := got[temp]; c.Error != "exit status 1" || c.Permanent || string(c.Result) != `{"out":"x"}` {
		t.Errorf("temporary with result: %+v", c)
	}
	if c := got[boom]; !strings.HasPrefix(c.Error, "handler panicked: boom") || c.Permanent {
		t.Errorf("panic: %+v", c)
	}
	if c := got[slow]; !strings.HasPrefix(c.Error, "timed out after 30ms") || c.Permanent {
		t.Errorf("timeout: %+v", c)
	}
	if s := p.Stats(); s.Failed != 4 {
		t.Errorf("stats %+v", s)
	}
}

func TestProgressReachesServer(t *testing.T) {
	fs := newFakeServer(t)
	id := fs.add("work", 0)
	done := make(chan struct{})
	h := handlers.HandlerFunc(func(ctx context.Context, task handlers.Task) (any, error) {
		task.Progress(10, "starting")
		task.Progress(50, "half")
		<-done
		return nil, nil
	})
	p := setup(t, fs, Config{Quota: map[string]int{"work": 1}, Handlers: map[string]handlers.Handler{"work": h}})
	stop := start(t, p)
	fs.waitFor(t, "progress 50", func(evs []event) bool {
		for _, e := range evs {
			if e.kind == "progress" && e.id == id && e.progress == 50 && e.message == "half" {
				return true
			}
		}
		return false
	})
	close(done)
	fs.waitFor(t, "completion", count("complete", id, 1))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestLogLinesSentBeforeOutcome: a handler's log lines reach the server,
// in order, before its completion does.
func TestLogLinesSentBeforeOutcome(t *testing.T) {
	fs := newFakeServer(t)
	id := fs.add("work", 0)
	h := handlers.HandlerFunc(func(ctx context.Context, task handlers.Task) (any, error) {
		task.Logf(model.LogInfo, "reading %s", "a.wav")
		task.Logf(model.LogWarn, "clipped")
		return nil, nil
	})
	p := setup(t, fs, Config{Quota: map[string]int{"work": 1}, Handlers: map[string]handlers.Handler{"work": h}})
	stop := start(t, p)
	fs.waitFor(t, "completion", count("complete", id, 1))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var got []string
	fs.mu.Lock()
	for _, e := range fs.events {
		switch {
		case e.kind == "log" && e.id == id:
			got = append(got, e.message)
		case e.kind == "complete" && e.id == id:
			got = append(got, "complete")
		}
	}
	fs.mu.Unlock()
	if want := []string{"info reading a.wav", "warn clipped", "complete"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("events %q, want %q", got, want)
	}
}

func TestOutcomeKeptThroughOutage(t *testing.T) {
	fs := newFakeServer(t)
	id := fs.add("work", 0)
	// Refuse completions with 503 for 500ms from the first one: the
	// client gives up (its deadline is 150ms) more than once meanwhile.
	var outageEnd time.Time
	fs.completeHook = func(_ int64, n int) int {
		if n == 1 {
			outageEnd = time.Now().Add(500 * time.Millisecond)
		}
		if time.Now().Before(outageEnd) {
			return 503
		}
		return 0
	}
	h := handlers.HandlerFunc(func(context.Context, handlers.Task) (any, error) { return "ok", nil })
	p := setup(t, fs, Config{Quota: map[string]int{"work": 1}, Handlers: map[string]handlers.Handler{"work": h}},
		150*time.Millisecond)
	stop := start(t, p)
	evs := fs.waitFor(t, "the completion", count("complete", id, 1))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Outcomes go by group commit, one key per batch call: a resent
	// outcome is made idempotent by the store's exact-repeat rule, so what
	// matters is that it was refused during the outage, kept, and applied
	// exactly once after it.
	refused, applied := 0, 0
	for _, e := range evs {
		if e.id == id && e.kind == "complete-refused" {
			refused++
		}
		if e.id == id && e.kind == "complete" {
			applied++
		}
	}
	if refused < 2 || applied != 1 {
		t.Errorf("refused %d times, applied %d times; want several refusals and one application", refused, applied)
	}
	if s := p.Stats(); s.Completed != 1 || s.Dropped != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestStaleEpochOnCompleteDrops(t *testing.T) {
	fs := newFakeServer(t)
	id := fs.add("work", 0)
	fs.completeHook = func(int64, int) int { return 409 }
	h := handlers.HandlerFunc(func(context.Context, handlers.Task) (any, error) { return "ok", nil })
	p := setup(t, fs, Config{Quota: map[string]int{"work": 1}, Handlers: map[string]handlers.Handler{"work": h}})
	stop := start(t, p)
	fs.waitFor(t, "the refused completion", count("complete-refused", id, 1))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(fs.eventsOf("complete-refused")); n != 1 {
		t.Errorf("%d completion attempts after a 409, want 1", n)
	}
	if s := p.Stats(); s.Dropped != 1 || s.Held != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestResultWithErrorRefusedSendsErrorAlone(t *testing.T) {
	fs := newFakeServer(t)
	fs.resultXorError = true
	id := fs.add("exec", 0)
	h := handlers.HandlerFunc(func(context.Context, handlers.Task) (any, error) {
		return map[string]string{"stderr": "no such file"}, errors.New("exit status 2")
	})
	p := setup(t, fs, Config{Quota: map[string]int{"exec": 1}, Handlers: map[string]handlers.Handler{"exec": h}})
	stop := start(t, p)
	evs := fs.waitFor(t, "the completion", count("complete", id, 1))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if c := lastOf(t, evs, "complete").comp; c.Error != "exit status 2" || len(c.Result) != 0 {
		t.Errorf("completion %+v", c)
	}
	if s := p.Stats(); s.Failed != 1 || s.Dropped != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestNewerClaimSupersedesOldRun(t *testing.T) {
	fs := newFakeServer(t)
	id := fs.add("work", 0)
	attempts := make(chan int, 2)
	causes := make(chan error, 2)
	h := handlers.HandlerFunc(func(ctx context.Context, task handlers.Task) (any, error) {
		attempts <- task.Attempt
		if task.Attempt == 2 {
			return "second", nil
		}
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return "first", nil
	})
	p := setup(t, fs, Config{Quota: map[string]int{"work": 2}, Handlers: map[string]handlers.Handler{"work": h}})
	stop := start(t, p)
	if a := recv(t, attempts, "first run"); a != 1 {
		t.Fatalf("attempt %d", a)
	}
	fs.requeue(id) // our lease "expired"; the job goes to the next claim
	if cause := recv(t, causes, "first run's end"); !errors.Is(cause, errLeaseLost) {
		t.Errorf("first run ended with %v", cause)
	}
	fs.waitFor(t, "the completion", count("complete", id, 1))
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The completion, not the last event: a claim may follow it.
	comps := fs.eventsOf("complete")
	if len(comps) != 1 {
		t.Fatalf("%d completions", len(comps))
	}
	if c := comps[0].comp; c.Epoch != 2 || string(c.Result) != `"second"` {
		t.Errorf("completion %+v, want the second run's", c)
	}
}

// lingerControl stands in for the claim loops' linger timer: started
// receives a value each time a claim loop begins to linger, and the
// linger ends when the test sends on expire.
type lingerControl struct {
	started chan time.Duration
	expire  chan time.Time
}

// controlLinger makes p's claim loops linger under the test's control.
func controlLinger(p *Processor) *lingerControl {
	lc := &lingerControl{started: make(chan time.Duration, 10), expire: make(chan time.Time)}
	p.lingerAfter = func(d time.Duration) <-chan time.Time {
		select {
		case lc.started <- d:
		default: // lingers the test no longer watches
		}
		return lc.expire
	}
	return lc
}

// claimsAsked returns the slots of type typ each claim asked for, in order.
func claimsAsked(fs *fakeServer, typ string) []int {
	var out []int
	for _, e := range fs.eventsOf("claim") {
		out = append(out, e.slots[typ])
	}
	return out
}

// finishOne lets one blocked handler return and waits for its outcome,
// the n-th completion, to reach the server.
func finishOne(t *testing.T, fs *fakeServer, b *blocker, n int) {
	t.Helper()
	b.release <- struct{}{}
	fs.waitFor(t, fmt.Sprintf("completion %d", n), count("complete", 0, n))
}

// TestClaimLinger: a busy processor with fewer than half its slots free
// waits for more before it claims, until half are free or the linger
// times out; an idle one claims its whole quota at once, never lingering.
func TestClaimLinger(t *testing.T) {
	for _, tc := range []struct {
		name string
		// expire: end the linger by its timer after the first job
		// finished, rather than by finishing a second one.
		expire bool
		want   []int // slots asked per claim
	}{
		{name: "UntilHalfFree", want: []int{4, 2}},
		{name: "UntilTimeout", expire: true, want: []int{4, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := newFakeServer(t)
			for range 8 {
				fs.add("work", 0)
			}
			b := newBlocker()
			p := setup(t, fs, Config{Quota: map[string]int{"work": 4}, Handlers: map[string]handlers.Handler{"work": b}})
			lc := controlLinger(p)
			start(t, p)
			for range 4 {
				recv(t, b.started, "a job of the first claim")
			}
			if got := claimsAsked(fs, "work"); !slices.Equal(got, []int{4}) {
				t.Fatalf("idle processor asked %v, want [4] at once", got)
			}
			finishOne(t, fs, b, 1)
			if d := recv(t, lc.started, "the linger"); d != claimLinger {
				t.Errorf("linger of %v, want %v", d, claimLinger)
			}
			// Lingering: no claim is sent before the linger ends.
			if got := claimsAsked(fs, "work"); len(got) != 1 {
				t.Fatalf("claims %v while lingering, want only the first", got)
			}
			if tc.expire {
				lc.expire <- time.Now()
			} else {
				finishOne(t, fs, b, 2)
			}
			fs.waitFor(t, "the second claim", count("claim", 0, 2))
			if got := claimsAsked(fs, "work"); !slices.Equal(got, tc.want) {
				t.Errorf("claims asked %v, want %v", got, tc.want)
			}
			close(b.release) // let every handler finish
		})
	}
}

// TestClaimNoLingerWhenHalfFree: with half the quota free a claim goes at
// once, even while other jobs run.
func TestClaimNoLingerWhenHalfFree(t *testing.T) {
	fs := newFakeServer(t)
	for range 4 {
		fs.add("work", 0)
	}
	b := newBlocker()
	p := setup(t, fs, Config{Quota: map[string]int{"work": 8}, Handlers: map[string]handlers.Handler{"work": b}})
	lc := controlLinger(p)
	start(t, p)
	for range 4 {
		recv(t, b.started, "a job")
	}
	// 4 of 8 slots busy: the next claim (a long poll) goes at once.
	fs.waitFor(t, "the second claim", count("claim", 0, 2))
	if got := claimsAsked(fs, "work"); !slices.Equal(got, []int{8, 4}) {
		t.Errorf("claims asked %v, want [8 4]", got)
	}
	select {
	case d := <-lc.started:
		t.Errorf("lingered %v with half the quota free", d)
	default:
	}
	close(b.release)
}

// lastOf returns the last event of kind in evs (other events, a claim
// say, may come after the one a test waited for).
func lastOf(t *testing.T, evs []event, kind string) event {
	t.Helper()
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].kind == kind {
			return evs[i]
		}
	}
	t.Fatalf("no %s event", kind)
	return event{}
}

// TestAnnouncesUnavailable: the presence announcement carries the types
// the processor cannot run, with their reasons, and no quota for them.
func TestAnnouncesUnavailable(t *testing.T) {
	fs := newFakeServer(t)
	noop := handlers.HandlerFunc(func(context.Context, handlers.Task) (any, error) { return nil, nil })
	un := map[string]string{"media.probe": "ffmpeg not found"}
	p := setup(t, fs, Config{Quota: map[string]int{"a": 1}, Handlers: map[string]handlers.Handler{"a": noop}, Unavailable: un})
	stop := start(t, p)
	defer stop()
	fs.waitFor(t, "an announcement with the unavailable types", func(evs []event) bool {
		for _, e := range evs {
			if e.kind == "presence" && maps.Equal(e.proc.Unavailable, un) && e.proc.Quota["media.probe"] == 0 {
				return true
			}
		}
		return false
	})
}

// TestPresenceSlots: the announcement carries the version, the interval
// and the slots used per type, so the farm page can show used and free.
func TestPresenceSlots(t *testing.T) {
	fs := newFakeServer(t)
	fs.add("slow", 0)
	slow := newBlocker()
	p := setup(t, fs, Config{
		Quota:    map[string]int{"slow": 3, "idle": 2},
		Handlers: map[string]handlers.Handler{"slow": slow, "idle": slow},
		Version:  "1.2.3", PresenceEvery: 50 * time.Millisecond, Grace: 10 * time.Millisecond,
	})
	stop := start(t, p)
	t.Cleanup(func() { _ = stop() })
	recv(t, slow.started, "slow start")
	fs.waitFor(t, "an announcement with one slow slot used", func(evs []event) bool {
		for _, e := range evs {
			if e.kind == "presence" && maps.Equal(e.proc.Used, map[string]int{"slow": 1, "idle": 0}) &&
				e.proc.Version == "1.2.3" && e.proc.Every == model.Duration(50*time.Millisecond) {
				return true
			}
		}
		return false
	})
	close(slow.release)
	fs.waitFor(t, "an announcement with every slot free", func(evs []event) bool {
		e := evs[len(evs)-1]
		for i := len(evs) - 1; i >= 0 && e.kind != "presence"; i-- {
			e = evs[i]
		}
		return e.kind == "presence" && maps.Equal(e.proc.Used, map[string]int{"slow": 0, "idle": 0})
	})
}
