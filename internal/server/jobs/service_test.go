package jobs_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server/jobs"
	"github.com/dpe-engine/dpe/internal/server/wake"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/store/sqlite"
	"github.com/dpe-engine/dpe/internal/wire"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)

// claimSpy is a store that tells, on each JobClaim, how many jobs it
// handed out, so a test knows a long-poll has looked and found nothing.
type claimSpy struct {
	store.Store
	claims chan int
}

func (s *claimSpy) JobClaim(ctx context.Context, p store.ClaimParams) ([]model.Job, error) {
	jobs, err := s.Store.JobClaim(ctx, p)
	select {
	case s.claims <- len(jobs):
	default: // nobody listens
	}
	return jobs, err
}

// bundle is what a test of the service needs.
type bundle struct {
	svc   *jobs.Service
	store *claimSpy
	clock *clock.Fake
	hub   *wake.Hub
}

// setup returns a job service on a fresh SQLite store with a fake clock.
// The long-poll tick is an hour: a claim that returns early was woken.
func setup(t *testing.T) bundle {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "dpe.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	spy := &claimSpy{Store: st, claims: make(chan int, 16)}
	clk := clock.NewFake(t0)
	hub := wake.NewHub()
	t.Cleanup(hub.Close)
	svc := jobs.New(jobs.Config{Store: spy, Clock: clk, Log: log, Wake: hub, Tick: time.Hour})
	return bundle{svc: svc, store: spy, clock: clk, hub: hub}
}

func (b bundle) submit(t *testing.T, spec model.JobSpec) model.Job {
	t.Helper()
	res, err := b.svc.Submit(context.Background(), []model.JobSpec{spec}, "", false)
	if err != nil {
		t.Fatalf("submit %+v: %v", spec, err)
	}
	return res[0].Job
}

func (b bundle) claim(t *testing.T, typ string, ttl time.Duration) []model.Job {
	t.Helper()
	js, err := b.svc.Claim(context.Background(), model.ClaimRequest{Processor: "p1", Slots: map[string]int{typ: 10}, LeaseTTL: model.Duration(ttl)}, "")
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return js
}

// TestSubmitValidation: each bad spec is refused with the field at fault,
// prefixed with its index in a batch, and a batch with one bad spec stores
// nothing.
func TestSubmitValidation(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	cases := []struct {
		name  string
		spec  model.JobSpec
		field string
	}{
		{"no type", model.JobSpec{}, "type"},
		{"malformed type", model.JobSpec{Type: "Bad Type"}, "type"},
		{"unknown type", model.JobSpec{Type: "video.teleport"}, "type"},
		{"missing param", model.JobSpec{Type: "util.checksum", Params: []byte(`{}`)}, "params.path"},
		{"params not an object", model.JobSpec{Type: "noop", Params: []byte(`[1]`)}, "params"},
		{"negative priority", model.JobSpec{Type: "noop", Priority: -1}, "priority"},
		{"priority too high", model.JobSpec{Type: "noop", Priority: model.MaxPriority + 1}, "priority"},
		{"too many attempts", model.JobSpec{Type: "noop", MaxAttempts: jobs.MaxAttempts + 1}, "max_attempts"},
		{"backoff cap below backoff", model.JobSpec{Type: "noop", Backoff: model.Duration(time.Minute), BackoffMax: model.Duration(time.Second)}, "backoff_max"},
		{"bad selector label", model.JobSpec{Type: "noop", Selector: map[string]string{"bad key": "x"}}, "selector"},
		{"bad selector value", model.JobSpec{Type: "noop", Selector: map[string]string{"site": "a b"}}, "selector.site"},
		{"step without instance", model.JobSpec{Type: "noop", Step: "a"}, "step"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, batch := range []bool{false, true} {
				specs := []model.JobSpec{c.spec}
				want := c.field
				if batch {
					specs = []model.JobSpec{{Type: "noop"}, c.spec}
					want = "jobs[1]." + c.field
				}
				_, err := b.svc.Submit(ctx, specs, "", batch)
				var fe *model.FieldError
				if !errors.As(err, &fe) || fe.Field != want || !errors.Is(err, model.ErrInvalid) {
					t.Fatalf("batch %v: err %v, want an invalid-input error on %s", batch, err, want)
				}
			}
		})
	}
	// The request's Idempotency-Key becomes the job's key: it has the
	// limit of a key given in the body (PostgreSQL refuses an index entry
	// of a few kB with an internal error).
	long := strings.Repeat("k", jobs.MaxKeyLen+1)
	for _, batch := range []bool{false, true} {
		var fe *model.FieldError
		if _, err := b.svc.Submit(ctx, []model.JobSpec{{Type: "noop"}}, long, batch); !errors.As(err, &fe) || fe.Field != "Idempotency-Key" {
			t.Errorf("batch %v, Idempotency-Key of %d characters: %v, want an invalid-input error on Idempotency-Key", batch, len(long), err)
		}
	}
	if _, err := b.svc.Submit(ctx, nil, "", true); !errors.Is(err, model.ErrInvalid) {
		t.Errorf("empty batch: %v", err)
	}
	page, err := b.svc.List(ctx, model.JobFilter{})
	if err != nil || page.Total != 0 {
		t.Fatalf("refused submits stored %d jobs (%v)", page.Total, err)
	}
	// Defaults are applied to what is stored.
	j := b.submit(t, model.JobSpec{Type: "noop"})
	if j.State != model.JobQueued || j.MaxAttempts < 1 || !j.RunAfter.Equal(t0) {
		t.Errorf("stored job %+v: want queued, attempts > 0, run after the clock's now", j)
	}
}

// TestClaimLongPollWokenBySubmit: a claim that finds nothing waits, and a
// submit of its type wakes it long before the tick; a submit of another
// type does not hand it anything.
func TestClaimLongPollWokenBySubmit(t *testing.T) {
	b := setup(t)
	type result struct {
		jobs []model.Job
		err  error
	}
	done := make(chan result, 1)
	go func() {
		js, err := b.svc.Claim(context.Background(), model.ClaimRequest{Processor: "p1", Slots: map[string]int{"noop": 1}, Wait: model.Duration(30 * time.Second)}, "")
		done <- result{js, err}
	}()
	select {
	case n := <-b.store.claims:
		if n != 0 {
			t.Fatalf("first try claimed %d jobs from an empty queue", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the claim never looked")
	}
	other := b.submit(t, model.JobSpec{Type: "util.mkdir", Params: []byte(`{"path":"/tmp/x"}`)})
	want := b.submit(t, model.JobSpec{Type: "noop"})
	select {
	case r := <-done:
		if r.err != nil || len(r.jobs) != 1 || r.jobs[0].ID != want.ID {
			t.Fatalf("claim got %+v %v, want job %d (not %d)", r.jobs, r.err, want.ID, other.ID)
		}
		if r.jobs[0].State != model.JobRunning || r.jobs[0].Epoch != 1 || r.jobs[0].Attempt != 1 {
			t.Errorf("claimed job %+v: want running, epoch 1, attempt 1", r.jobs[0])
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the submit did not wake the waiting claim (tick is an hour)")
	}
}

// TestClaimLongPollEndsOnClose: a server draining (hub closed) hands the
// waiting claims back empty at once.
func TestClaimLongPollEndsOnClose(t *testing.T) {
	b := setup(t)
	done := make(chan []model.Job, 1)
	go func() {
		js, _ := b.svc.Claim(context.Background(), model.ClaimRequest{Processor: "p1", Slots: map[string]int{"noop": 1}, Wait: model.Duration(30 * time.Second)}, "")
		done <- js
	}()
	<-b.store.claims
	b.hub.Close()
	select {
	case js := <-done:
		if len(js) != 0 {
			t.Fatalf("claimed %d jobs from an empty queue", len(js))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("closing the hub did not end the long-poll")
	}
}

// TestCancel: a queued job is canceled at once; a running one keeps
// running with cancel asked, which its next heartbeat tells; a finished
// job cannot be canceled.
func TestCancel(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	queued := b.submit(t, model.JobSpec{Type: "noop"})
	c, err := b.svc.Cancel(ctx, queued.ID)
	if err != nil || c.State != model.JobCanceled {
		t.Fatalf("cancel queued: %+v %v", c, err)
	}
	if js := b.claim(t, "noop", time.Minute); len(js) != 0 {
		t.Fatalf("a canceled job was claimed: %+v", js)
	}

	running := b.submit(t, model.JobSpec{Type: "noop"})
	held := b.claim(t, "noop", time.Minute)
	if len(held) != 1 || held[0].ID != running.ID {
		t.Fatalf("claim: %+v", held)
	}
	c, err = b.svc.Cancel(ctx, running.ID)
	if err != nil || c.State != model.JobRunning || !c.CancelAsked {
		t.Fatalf("cancel running: %+v %v, want still running with cancel asked", c, err)
	}
	hb, err := b.svc.Heartbeat(ctx, wire.HeartbeatRequest{Processor: "p1", Jobs: []model.Heartbeat{{ID: running.ID, Epoch: held[0].Epoch}}})
	if err != nil || len(hb) != 1 || hb[0].Status != model.LeaseCanceled {
		t.Fatalf("heartbeat after cancel: %+v %v, want canceled", hb, err)
	}

	done := b.submit(t, model.JobSpec{Type: "util.mkdir", Params: []byte(`{"path":"/tmp/y"}`)})
	h := b.claim(t, "util.mkdir", time.Minute)
	if _, err := b.svc.Complete(ctx, model.Completion{ID: done.ID, Epoch: h[0].Epoch}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.svc.Cancel(ctx, done.ID); !errors.Is(err, model.ErrConflict) {
		t.Errorf("cancel of a succeeded job: %v, want a conflict", err)
	}
	if _, err := b.svc.Cancel(ctx, 999999); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("cancel of a missing job: %v, want not found", err)
	}
}

// TestRescueExpiredLeases: a job whose lease ran out (the fake clock
// moved past it) goes back to the queue with its attempt counted, and
// fails once it has used its attempts; a live lease is left alone.
func TestRescueExpiredLeases(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	retry := b.submit(t, model.JobSpec{Type: "noop", MaxAttempts: 2, Backoff: model.Duration(time.Second)})
	last := b.submit(t, model.JobSpec{Type: "util.mkdir", Params: []byte(`{"path":"/tmp/z"}`), MaxAttempts: 1})
	if n := len(b.claim(t, "noop", 5*time.Second)) + len(b.claim(t, "util.mkdir", 5*time.Second)); n != 2 {
		t.Fatalf("claimed %d jobs, want 2", n)
	}

	b.clock.Advance(4 * time.Second) // leases still live
	if r, err := b.svc.Rescue(ctx); err != nil || r.Requeued+r.Failed != 0 {
		t.Fatalf("rescue before expiry: %+v %v", r, err)
	}

	b.clock.Advance(2 * time.Second) // both leases expired
	r, err := b.svc.Rescue(ctx)
	if err != nil || r.Requeued != 1 || r.Failed != 1 {
		t.Fatalf("rescue: %+v %v, want 1 requeued and 1 failed", r, err)
	}
	// A dead processor is not the job's fault: it is claimable at once,
	// no back-off.
	j, err := b.svc.Get(ctx, retry.ID)
	if err != nil || j.State != model.JobQueued || j.Attempt != 1 || j.RunAfter.After(b.clock.Now()) || j.LeaseUntil != nil {
		t.Fatalf("rescued job %+v %v: want queued now, attempt 1, no lease", j, err)
	}
	if j, err := b.svc.Get(ctx, last.ID); err != nil || j.State != model.JobFailed {
		t.Fatalf("job out of attempts: %+v %v, want failed", j, err)
	}
	js := b.claim(t, "noop", 5*time.Second)
	if len(js) != 1 || js[0].ID != retry.ID || js[0].Attempt != 2 || js[0].Epoch != 2 {
		t.Fatalf("claim after rescue: %+v, want job %d attempt 2 epoch 2", js, retry.ID)
	}
	// The old holder's epoch is refused.
	if _, err := b.svc.Complete(ctx, model.Completion{ID: retry.ID, Epoch: 1}); !errors.Is(err, model.ErrConflict) {
		t.Errorf("completion under the rescued epoch: %v, want a conflict", err)
	}
}

// TestSetPriority: the priority of a queued job changes; bad values are
// refused naming the field.
func TestSetPriority(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	j := b.submit(t, model.JobSpec{Type: "noop"})
	p := 7
	got, err := b.svc.SetPriority(ctx, j.ID, &p)
	if err != nil || got.Priority != 7 {
		t.Fatalf("set priority: %+v %v", got, err)
	}
	for _, bad := range []*int{nil, ptr(-1), ptr(model.MaxPriority + 1)} {
		var fe *model.FieldError
		if _, err := b.svc.SetPriority(ctx, j.ID, bad); !errors.As(err, &fe) || fe.Field != "priority" {
			t.Errorf("priority %v: %v, want an error on priority", bad, err)
		}
	}
}

func ptr(n int) *int { return &n }

// TestProcessorGone: a processor silent for three of its announcement
// intervals (the default when it names none) is listed as gone; bad
// announcements are refused naming the field.
func TestProcessorGone(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	seen := func(p model.Processor) {
		t.Helper()
		if err := b.svc.ProcessorSeen(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	seen(model.Processor{ID: "fast", Quota: map[string]int{"noop": 2}, ProcessorPresence: model.ProcessorPresence{Used: map[string]int{"noop": 1}, Version: "0.1.0", Every: model.Duration(time.Second)}})
	seen(model.Processor{ID: "plain", Quota: map[string]int{"noop": 2}})
	gone := func() map[string]bool {
		t.Helper()
		list, err := b.svc.Processors(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, p := range list {
			out[p.ID] = p.Gone
		}
		return out
	}
	for _, c := range []struct {
		advance time.Duration
		want    map[string]bool
	}{
		{0, map[string]bool{"fast": false, "plain": false}},
		{3 * time.Second, map[string]bool{"fast": false, "plain": false}},
		{time.Millisecond, map[string]bool{"fast": true, "plain": false}},
		{27 * time.Second, map[string]bool{"fast": true, "plain": true}},
		{time.Minute, map[string]bool{}}, // forgotten
	} {
		b.clock.Advance(c.advance)
		if got := gone(); !maps.Equal(got, c.want) {
			t.Errorf("after +%v: gone %v, want %v", c.advance, got, c.want)
		}
	}
	for _, c := range []struct {
		p     model.Processor
		field string
	}{
		{model.Processor{ID: "x", ProcessorPresence: model.ProcessorPresence{Used: map[string]int{"noop": -1}}}, "used.noop"},
		{model.Processor{ID: "x", ProcessorPresence: model.ProcessorPresence{Used: map[string]int{"No Type": 1}}}, "used"},
		{model.Processor{ID: "x", ProcessorPresence: model.ProcessorPresence{Version: strings.Repeat("v", 101)}}, "version"},
		{model.Processor{ID: "x", ProcessorPresence: model.ProcessorPresence{Every: model.Duration(time.Minute)}}, "every"},
		{model.Processor{ID: "x", Labels: map[string]string{"\u2400version": "1.0"}}, "labels"},
		{model.Processor{ID: "x", Labels: map[string]string{"site": "a b"}}, "labels.site"},
		{model.Processor{ID: "x", Labels: manyLabels(wire.MaxLabels + 1)}, "labels"},
	} {
		err := b.svc.ProcessorSeen(ctx, c.p)
		if !errors.Is(err, model.ErrInvalid) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("ProcessorSeen(%+v) = %v, want invalid %s", c.p, err, c.field)
		}
	}
}

// manyLabels returns n valid labels.
func manyLabels(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = "v"
	}
	return m
}
