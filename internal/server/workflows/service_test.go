package workflows_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server/jobs"
	"github.com/dpe-engine/dpe/internal/server/wake"
	"github.com/dpe-engine/dpe/internal/server/workflows"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/store/sqlite"
)

var t0 = time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)

// claimSpy tells, on each InstanceClaim, how many instances it handed
// out, so a test knows a long-poll has looked and found nothing.
type claimSpy struct {
	*sqlite.Store
	claims chan int
}

func (s *claimSpy) InstanceClaim(ctx context.Context, p store.InstanceClaimParams) ([]model.Instance, error) {
	list, err := s.Store.InstanceClaim(ctx, p)
	select {
	case s.claims <- len(list):
	default:
	}
	return list, err
}

type bundle struct {
	flows *workflows.Service
	jobs  *jobs.Service
	store *claimSpy
	clock *clock.Fake
}

// setup returns the workflow and job services on a fresh SQLite store,
// sharing one wake hub and a fake clock, with the template "wf" (an int
// arg n, one noop job step) imported. The long-poll tick is an hour.
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
	js := jobs.New(jobs.Config{Store: spy, Clock: clk, Log: log, Wake: hub, Tick: time.Hour})
	flows := workflows.New(workflows.Config{Store: spy, Clock: clk, Log: log, Wake: hub, Tick: time.Hour, KnownJobType: js.KnownType})
	src := "name: wf\nargs:\n  n: {type: int, default: 1}\nsteps:\n  - {id: a, job: noop}\n"
	if _, _, err := flows.Import(context.Background(), []byte(src)); err != nil {
		t.Fatal(err)
	}
	return bundle{flows: flows, jobs: js, store: spy, clock: clk}
}

func (b bundle) start(t *testing.T, spec model.InstanceSpec, key string) (model.Instance, bool) {
	t.Helper()
	inst, existing, err := b.flows.Start(context.Background(), spec, key)
	if err != nil {
		t.Fatalf("start %+v: %v", spec, err)
	}
	return inst, existing
}

// TestStartValidation: a bad start names its field and creates nothing.
func TestStartValidation(t *testing.T) {
	b := setup(t)
	cases := []struct {
		name  string
		spec  model.InstanceSpec
		field string
	}{
		{"no template", model.InstanceSpec{}, "template"},
		{"unknown template", model.InstanceSpec{Template: "nope"}, "template"},
		{"missing version", model.InstanceSpec{Template: "wf", Version: 9}, "version"},
		{"negative version", model.InstanceSpec{Template: "wf", Version: -1}, "version"},
		{"negative priority", model.InstanceSpec{Template: "wf", Priority: -1}, "priority"},
		{"priority too high", model.InstanceSpec{Template: "wf", Priority: model.MaxPriority + 1}, "priority"},
		{"args not an object", model.InstanceSpec{Template: "wf", Args: json.RawMessage(`[1]`)}, "args"},
		{"arg of the wrong type", model.InstanceSpec{Template: "wf", Args: json.RawMessage(`{"n":"many"}`)}, "args.n"},
		{"bad name", model.InstanceSpec{Template: "wf", Name: " padded "}, "name"},
		{"sub-workflow through the API", model.InstanceSpec{Template: "wf", ParentID: 1, ParentStep: "x"}, "parent_id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := b.flows.Start(context.Background(), c.spec, "")
			var fe *model.FieldError
			if !errors.As(err, &fe) || fe.Field != c.field {
				t.Fatalf("err %v, want an invalid-input error on %s", err, c.field)
			}
		})
	}
	page, err := b.flows.List(context.Background(), model.InstanceFilter{})
	if err != nil || page.Total != 0 {
		t.Fatalf("refused starts created %d instances (%v)", page.Total, err)
	}
}

// TestStartDedupByName: a name starts one instance; starting it again
// with the same args returns that instance, with other args is refused.
func TestStartDedupByName(t *testing.T) {
	b := setup(t)
	first, existing := b.start(t, model.InstanceSpec{Template: "wf", Name: "nightly/2026-11-25", Args: json.RawMessage(`{"n":2}`)}, "")
	if existing || first.State != model.InstancePending {
		t.Fatalf("first start: %+v existing %v", first, existing)
	}
	again, existing := b.start(t, model.InstanceSpec{Template: "wf", Name: "nightly/2026-11-25", Args: json.RawMessage(`{"n":2}`)}, "")
	if !existing || again.ID != first.ID {
		t.Fatalf("same name, same args: instance %d existing %v, want %d existing", again.ID, existing, first.ID)
	}
	// Other args, or another template, under the same name: refused as
	// a conflict naming the existing instance, its state and the args
	// that differ; nothing new is created.
	_, _, err := b.flows.Start(context.Background(), model.InstanceSpec{Template: "wf", Name: "nightly/2026-11-25", Args: json.RawMessage(`{"n":3}`)}, "")
	var ee *workflows.ExistsError
	if !errors.Is(err, model.ErrConflict) || !errors.As(err, &ee) || ee.Instance.ID != first.ID || len(ee.Differ) != 1 || ee.Differ[0] != "n" {
		t.Fatalf("same name, other args: err %v, want a conflict naming instance %d and arg n", err, first.ID)
	}
	for _, want := range []string{`"nightly/2026-11-25"`, fmt.Sprintf("id %d", first.ID), "pending", "different args (n)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("conflict %q does not say %s", err, want)
		}
	}
	// The default made explicit is the same start.
	if _, existing := b.start(t, model.InstanceSpec{Template: "wf", Name: "default/1"}, ""); existing {
		t.Fatal("a fresh name was found existing")
	}
	if _, existing := b.start(t, model.InstanceSpec{Template: "wf", Name: "default/1", Args: json.RawMessage(`{"n":1}`)}, ""); !existing {
		t.Fatal("args equal once defaults apply: want the existing instance")
	}
	// The batch start answers the same, per item.
	res, err := b.flows.StartMany(context.Background(), []model.InstanceSpec{
		{Template: "wf", Name: "nightly/2026-11-25", Args: json.RawMessage(`{"n":2}`)},
		{Template: "wf", Name: "nightly/2026-11-25", Args: json.RawMessage(`{"n":4}`)},
	}, "")
	if err != nil || res[0].Err != nil || !res[0].Existing || !errors.As(res[1].Err, &ee) {
		t.Fatalf("batch: %+v, %v; want the existing instance, then a conflict", res, err)
	}
	// Without a name the Idempotency-Key names it, so a retry is a repeat.
	k1, _ := b.start(t, model.InstanceSpec{Template: "wf"}, "key-1")
	k2, existing := b.start(t, model.InstanceSpec{Template: "wf"}, "key-1")
	if !existing || k2.ID != k1.ID || k1.Name != "wf/key-1" {
		t.Fatalf("keyed starts: %q %d then %d existing %v", k1.Name, k1.ID, k2.ID, existing)
	}
	// Without either, every start is new.
	u1, _ := b.start(t, model.InstanceSpec{Template: "wf"}, "")
	u2, existing := b.start(t, model.InstanceSpec{Template: "wf"}, "")
	if existing || u1.ID == u2.ID {
		t.Fatalf("unnamed starts: %d and %d existing %v", u1.ID, u2.ID, existing)
	}
}

// TestSetPriorityReprioritisesQueuedJobs: a new priority of an instance
// reaches its queued jobs; its running jobs and other instances' jobs
// keep theirs; a finished instance refuses.
func TestSetPriorityReprioritisesQueuedJobs(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	inst, _ := b.start(t, model.InstanceSpec{Template: "wf", Priority: 1}, "")
	other, _ := b.start(t, model.InstanceSpec{Template: "wf", Priority: 1}, "")
	submit := func(instanceID int64, step string) model.Job {
		t.Helper()
		res, err := b.jobs.Submit(ctx, []model.JobSpec{{Type: "noop", Priority: 1, InstanceID: instanceID, Step: step}}, "", false)
		if err != nil {
			t.Fatal(err)
		}
		return res[0].Job
	}
	running := submit(inst.ID, "a")
	if js, err := b.jobs.Claim(ctx, model.ClaimRequest{Processor: "p", Slots: map[string]int{"noop": 1}}, ""); err != nil || len(js) != 1 || js[0].ID != running.ID {
		t.Fatalf("claim: %+v %v", js, err)
	}
	queued := submit(inst.ID, "b")
	foreign := submit(other.ID, "a")

	p := 9
	got, err := b.flows.SetPriority(ctx, inst.ID, &p)
	if err != nil || got.Priority != 9 {
		t.Fatalf("set priority: %+v %v", got, err)
	}
	for _, c := range []struct {
		name string
		id   int64
		want int
	}{{"queued job", queued.ID, 9}, {"running job", running.ID, 1}, {"other instance's job", foreign.ID, 1}} {
		j, err := b.jobs.Get(ctx, c.id)
		if err != nil || j.Priority != c.want {
			t.Errorf("%s: priority %d (%v), want %d", c.name, j.Priority, err, c.want)
		}
	}
	var fe *model.FieldError
	if _, err := b.flows.SetPriority(ctx, inst.ID, nil); !errors.As(err, &fe) || fe.Field != "priority" {
		t.Errorf("nil priority: %v", err)
	}
	if _, err := b.flows.SetPriority(ctx, 999999, &p); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("missing instance: %v, want not found", err)
	}
}

// TestClaimWokenByStart: a worker's claim that finds nothing waits, and a
// start wakes it long before the tick.
func TestClaimWokenByStart(t *testing.T) {
	b := setup(t)
	type result struct {
		list []model.Instance
		err  error
	}
	done := make(chan result, 1)
	go func() {
		l, err := b.flows.Claim(context.Background(), model.InstanceClaimRequest{Worker: "w1", Default: 1, Wait: model.Duration(30 * time.Second)})
		done <- result{l, err}
	}()
	select {
	case n := <-b.store.claims:
		if n != 0 {
			t.Fatalf("first try claimed %d instances of none", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the claim never looked")
	}
	inst, _ := b.start(t, model.InstanceSpec{Template: "wf"}, "")
	select {
	case r := <-done:
		if r.err != nil || len(r.list) != 1 || r.list[0].ID != inst.ID || r.list[0].Worker != "w1" {
			t.Fatalf("claim: %+v %v, want instance %d held by w1", r.list, r.err, inst.ID)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the start did not wake the waiting claim (tick is an hour)")
	}
}

// TestInstanceLeaseExpiry: an instance whose worker stopped renewing is
// claimed by another once the fake clock passes the lease, with a higher
// epoch; before that, nobody else gets it.
func TestInstanceLeaseExpiry(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	inst, _ := b.start(t, model.InstanceSpec{Template: "wf"}, "")
	claim := func(worker string) []model.Instance {
		t.Helper()
		l, err := b.flows.Claim(ctx, model.InstanceClaimRequest{Worker: worker, Default: 5, LeaseTTL: model.Duration(5 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	held := claim("w1")
	if len(held) != 1 || held[0].ID != inst.ID {
		t.Fatalf("w1 claimed %+v", held)
	}
	b.clock.Advance(4 * time.Second)
	if l := claim("w2"); len(l) != 0 {
		t.Fatalf("w2 took a live lease: %+v", l)
	}
	b.clock.Advance(2 * time.Second)
	l := claim("w2")
	if len(l) != 1 || l[0].ID != inst.ID || l[0].Worker != "w2" || l[0].Epoch <= held[0].Epoch {
		t.Fatalf("after expiry w2 got %+v, want instance %d with an epoch above %d", l, inst.ID, held[0].Epoch)
	}
	lost, err := b.flows.Heartbeat(ctx, model.InstanceLeases{Worker: "w1", IDs: []int64{inst.ID}})
	if err != nil || len(lost) != 1 || lost[0] != inst.ID {
		t.Fatalf("w1's heartbeat: lost %v (%v), want its instance lost", lost, err)
	}
}

// TestCancel: canceling a live instance marks it; a missing one is not
// found.
func TestCancel(t *testing.T) {
	b := setup(t)
	ctx := context.Background()
	inst, _ := b.start(t, model.InstanceSpec{Template: "wf"}, "")
	c, err := b.flows.Cancel(ctx, inst.ID)
	if err != nil || (c.State != model.InstanceCanceled && !c.CancelAsked) {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	if _, err := b.flows.Cancel(ctx, 999999); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("cancel of a missing instance: %v", err)
	}
}
