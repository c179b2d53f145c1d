package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/handlers"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/processor"
	"github.com/dpe-engine/dpe/internal/server"
	"github.com/dpe-engine/dpe/internal/testdb"
	"github.com/dpe-engine/dpe/internal/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

// engines runs f against a full stack on each core database engine.
func engines(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "sqlite:"+filepath.Join(t.TempDir(), "dpe.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, testdb.Postgres(t)) })
}

// run starts fn in the background until the test ends.
func run(t *testing.T, name string, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
}

// stack starts a server on dsn and returns a client for it; with procs,
// also a processor for noop, and a worker.
func stack(t *testing.T, dsn string, procs bool) *client.Client {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := server.New(server.Config{DB: dsn, Listen: "127.0.0.1:0", Log: log, Tick: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	run(t, "server", srv.Run)
	select {
	case <-srv.Ready():
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready")
	}
	c, err := client.New(client.Config{URLs: []string{srv.URL()}, Deadline: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if procs {
		p, err := processor.New(processor.Config{Client: c, Quota: map[string]int{"noop": 8}, LeaseTTL: 3 * time.Second,
			Handlers: handlers.Builtins(handlers.Config{}), Log: log, Grace: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		run(t, "processor", p.Run)
		w, err := worker.New(worker.Config{Client: c, LeaseTTL: 3 * time.Second, PollWait: 2 * time.Second, Log: log})
		if err != nil {
			t.Fatal(err)
		}
		run(t, "worker", w.Run)
	}
	return c
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

func importTemplate(t *testing.T, c *client.Client, src string) {
	t.Helper()
	if _, err := c.ImportTemplate(context.Background(), []byte(src), "application/yaml"); err != nil {
		t.Fatalf("import: %v", err)
	}
}

func start(t *testing.T, c *client.Client, spec model.InstanceSpec) model.Instance {
	t.Helper()
	inst, err := c.StartWorkflow(context.Background(), spec)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return *inst
}

func detail(t *testing.T, c *client.Client, id int64) model.InstanceDetail {
	t.Helper()
	d, err := c.GetWorkflow(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return *d
}

// waitFor polls until cond holds for the instance, failing after timeout.
func waitFor(t *testing.T, c *client.Client, id int64, timeout time.Duration, cond func(model.InstanceDetail) bool) model.InstanceDetail {
	t.Helper()
	var d model.InstanceDetail
	met := false
	defer func() {
		if met {
			return
		}
		// eventually failed the test: log what the workers left.
		t.Logf("instance %d at the last look: state %s current %v error %q", id, d.Instance.State, d.Instance.Current, d.Instance.Error)
		all, err := c.ListWorkflows(context.Background(), client.WorkflowQuery{Limit: 20})
		if err != nil {
			all = &model.Page[model.Instance]{}
		}
		for _, i := range all.Items {
			t.Logf("instance %d %s: %s worker %q wake %v seq %d current %v error %q", i.ID, i.Name, i.State, i.Worker, i.WakeAt, i.WakeSeq, i.Current, i.Error)
		}
		for _, st := range d.Steps {
			t.Logf("  step %s %s job %d child %d", st.Path, st.State, st.JobID, st.ChildID)
		}
	}()
	eventually.True(t, timeout, func() bool {
		d = detail(t, c, id)
		return cond(d)
	}, fmt.Sprintf("instance %d to meet the condition (its last state is logged)", id))
	met = true
	return d
}

func final(d model.InstanceDetail) bool { return d.Instance.State.Final() }

const kindsTemplate = `
name: kinds
args:
  items: {type: list, default: [1, 2, 3]}
  big: {type: bool, default: true}
steps:
  - {id: first, job: noop, params: {result: {size: 7}}}
  - id: big
    if: "args.big && steps.first.result.size > 5"
    then: [{id: mark, set: {size: "big"}}]
    else: [{id: small, set: {size: "small"}}]
  - id: fan
    foreach: "args.items"
    as: n
    concurrency: 2
    do:
      - {id: each, job: noop, params: {sleep: "${{ string(n * 10) + 'ms' }}"}}
  - id: both
    parallel:
      - {id: a, job: noop}
      - id: b
        sequence:
          - {id: b1, job: noop}
          - {id: b2, set: {done: true}}
  - id: guarded
    try:
      - {id: bad, job: noop, params: {fail: true}, retry: {max_attempts: 1}}
    catch:
      - {id: recover, set: {recovered: "${{ error.step }}"}}
    finally:
      - {id: note, log: "finally after ${{ vars.recovered }}"}
  - {id: pause, delay: 300ms}
  - {id: sub, workflow: child, args: {x: 21}}
  - id: nested
    try:
      - id: par
        parallel:
          - id: loop
            foreach: "['a', 'b', 'c']"
            concurrency: 2
            do:
              - {id: inner, job: noop, params: {fail: "${{ item == 'c' }}"}, retry: {max_attempts: 1}}
          - {id: side, job: noop}
    catch:
      - {id: caught, set: {caught: "${{ error.step }}"}}
output:
  size: "${{ vars.size }}"
  recovered: "${{ vars.recovered }}"
  doubled: "${{ steps.sub.result.doubled }}"
  caught: "${{ vars.caught }}"
`

const childTemplate = `
name: child
args:
  x: {type: int, required: true}
steps:
  - {id: work, job: noop}
output:
  doubled: "${{ args.x * 2 }}"
`

// TestEveryActivityKind runs a template with every activity kind, nested,
// through a real server, worker and processor on both engines.
func TestEveryActivityKind(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		c := stack(t, dsn, true)
		importTemplate(t, c, childTemplate)
		importTemplate(t, c, kindsTemplate)
		inst := start(t, c, model.InstanceSpec{Template: "kinds", Name: "kinds-1"})
		d := waitFor(t, c, inst.ID, 60*time.Second, final)
		if d.Instance.State != model.InstanceSucceeded {
			t.Fatalf("state %s: %s", d.Instance.State, d.Instance.Error)
		}
		var out map[string]any
		if err := json.Unmarshal(d.Instance.Output, &out); err != nil {
			t.Fatal(err)
		}
		if out["size"] != "big" || out["recovered"] != "bad" || out["doubled"] != float64(42) || out["caught"] != "inner" {
			t.Fatalf("output %s", d.Instance.Output)
		}
		// One job per job step: first, 3 × each, a, b1, bad, 3 × inner,
		// side (the child's own job belongs to the child).
		page, err := c.ListJobs(context.Background(), client.JobQuery{Workflow: inst.ID, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if page.Total != 11 {
			t.Fatalf("%d jobs of the instance, want 11", page.Total)
		}
		// Starting the same name again returns the same instance.
		again := start(t, c, model.InstanceSpec{Template: "kinds", Name: "kinds-1"})
		if again.ID != inst.ID {
			t.Fatalf("second start made instance %d, first %d", again.ID, inst.ID)
		}
	})
}

// TestCancelReachesJob: cancelling a running instance cancels its running
// job's handler.
func TestCancelReachesJob(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		c := stack(t, dsn, true)
		importTemplate(t, c, "name: slow\nsteps:\n  - {id: wait, job: noop, params: {sleep: 60s}}\n")
		inst := start(t, c, model.InstanceSpec{Template: "slow"})
		d := waitFor(t, c, inst.ID, 30*time.Second, func(d model.InstanceDetail) bool {
			return len(d.Jobs) == 1 && d.Jobs[0].State == model.JobRunning
		})
		jobID := d.Jobs[0].ID
		begin := time.Now()
		if _, err := c.CancelWorkflow(context.Background(), inst.ID); err != nil {
			t.Fatal(err)
		}
		d = waitFor(t, c, inst.ID, 30*time.Second, final)
		if d.Instance.State != model.InstanceCanceled {
			t.Fatalf("state %s", d.Instance.State)
		}
		j := eventually.Value(t, 30*time.Second, func() (model.Job, error) {
			j, err := c.GetJob(context.Background(), jobID)
			if err != nil {
				return model.Job{}, err
			}
			return *j, nil
		}, func(j model.Job) bool { return j.State.Final() }, fmt.Sprintf("job %d to end", jobID))
		if j.State != model.JobCanceled {
			t.Fatalf("job %s (%s), want canceled by its handler's context", j.State, j.Error)
		}
		t.Logf("job canceled %s after the instance cancel", time.Since(begin).Round(time.Millisecond))
	})
}

// TestPriorityReordersQueuedJobs: re-prioritising an instance changes its
// queued jobs' priority, so they are claimed first.
func TestPriorityReordersQueuedJobs(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		c := stack(t, dsn, false)
		w, err := worker.New(worker.Config{Client: c, PollWait: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		run(t, "worker", w.Run)
		importTemplate(t, c, "name: one\nsteps:\n  - {id: j, job: noop}\n")
		low := start(t, c, model.InstanceSpec{Template: "one", Name: "low", Priority: 1})
		high := start(t, c, model.InstanceSpec{Template: "one", Name: "high", Priority: 1})
		for _, id := range []int64{low.ID, high.ID} {
			waitFor(t, c, id, 30*time.Second, func(d model.InstanceDetail) bool { return len(d.Jobs) == 1 })
		}
		if _, err := c.SetWorkflowPriority(context.Background(), high.ID, 500); err != nil {
			t.Fatal(err)
		}
		jobs, err := c.Claim(context.Background(), model.ClaimRequest{Processor: "p", Slots: map[string]int{"noop": 1}})
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 1 || jobs[0].InstanceID != high.ID || jobs[0].Priority != 500 {
			t.Fatalf("claimed %+v, want the job of instance %d at priority 500", jobs, high.ID)
		}
	})
}

// TestConcurrencyKey: policy skip refuses a second instance of a busy key
// (409) and accepts other keys; policy queue starts the next one only when
// the running one ends.
func TestConcurrencyKey(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		c := stack(t, dsn, true)
		importTemplate(t, c, `
name: once
concurrency: skip
concurrency_key: args.file
args:
  file: {type: string, required: true}
steps:
  - {id: work, job: noop, params: {sleep: 300ms}}
`)
		first := start(t, c, model.InstanceSpec{Template: "once", Name: "a1", Args: []byte(`{"file":"a"}`)})
		_, err := c.StartWorkflow(context.Background(), model.InstanceSpec{Template: "once", Name: "a2", Args: []byte(`{"file":"a"}`)})
		if !errors.Is(err, model.ErrConflict) {
			t.Fatalf("second start of a busy key: %v, want 409", err)
		}
		other := start(t, c, model.InstanceSpec{Template: "once", Name: "b1", Args: []byte(`{"file":"b"}`)})
		for _, id := range []int64{first.ID, other.ID} {
			if d := waitFor(t, c, id, 30*time.Second, final); d.Instance.State != model.InstanceSucceeded {
				t.Fatalf("instance %d %s", id, d.Instance.State)
			}
		}
		// Once the first ended, the key is free again.
		start(t, c, model.InstanceSpec{Template: "once", Name: "a3", Args: []byte(`{"file":"a"}`)})

		importTemplate(t, c, `
name: inline
concurrency: queue
steps:
  - {id: work, job: noop, params: {sleep: 200ms}}
`)
		q1 := start(t, c, model.InstanceSpec{Template: "inline", Name: "q1"})
		q2 := start(t, c, model.InstanceSpec{Template: "inline", Name: "q2"})
		d2 := waitFor(t, c, q2.ID, 30*time.Second, final)
		d1 := detail(t, c, q1.ID)
		if d1.Instance.FinishedAt == nil || d2.Instance.StartedAt == nil || d2.Instance.StartedAt.Before(*d1.Instance.FinishedAt) {
			t.Fatalf("queued instance started at %v, before the first ended at %v", d2.Instance.StartedAt, d1.Instance.FinishedAt)
		}
	})
}
