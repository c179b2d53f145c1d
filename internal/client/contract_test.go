package client_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/lease"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server"
	"github.com/dpe-engine/dpe/internal/wire"
)

// The elector of a remote role takes its leases through the client.
var _ lease.Acquirer = (*client.Client)(nil)

// TestRoutes drives every typed method against a real server and checks
// that the calls made reach every /v1 route the API serves: a route
// without a client method fails here.
func TestRoutes(t *testing.T) {
	rec := &recorder{}
	t.Run("jobs", func(t *testing.T) { jobRoutes(t, realServer(t, rec)) })
	t.Run("workflows", func(t *testing.T) { workflowRoutes(t, realServer(t, rec)) })
	t.Run("triggers and leases", func(t *testing.T) { triggerAndLeaseRoutes(t, realServer(t, rec)) })
	t.Run("alerts", func(t *testing.T) { alertRoutes(t, realServer(t, rec)) })
	t.Run("tokens", func(t *testing.T) { tokenRoutes(t, realServer(t, rec), rec) })
	if t.Failed() {
		return
	}
	mux := http.NewServeMux()
	for _, p := range apiRoutes(t) {
		mux.HandleFunc(p, func(http.ResponseWriter, *http.Request) {})
	}
	called := map[string]bool{}
	for _, r := range rec.requests() {
		if _, p := mux.Handler(r); p != "" {
			called[p] = true
		}
	}
	for _, p := range apiRoutes(t) {
		if !called[p] {
			t.Errorf("route %q: no call of the client reached it", p)
		}
	}
}

// apiRoutes reads the /v1 route patterns registered in internal/api.
func apiRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../api/*.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`a\.handle\("([A-Z]+ /v1/[^"]*)"`)
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			out = append(out, string(m[1]))
		}
	}
	if len(out) < 40 {
		t.Fatalf("found %d routes in internal/api, expected over 40: has the registration changed?", len(out))
	}
	return out
}

// recorder is an http.RoundTripper that notes each request it sends.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, &http.Request{Method: req.Method, URL: req.URL, Host: req.Host})
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

func (r *recorder) requests() []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// realServer runs a server on a SQLite core database in t.TempDir() until
// the test ends and returns a client of it whose requests rec notes.
func realServer(t *testing.T, rec *recorder) *client.Client {
	t.Helper()
	srv, err := server.New(server.Config{
		DB: "sqlite:" + filepath.Join(t.TempDir(), "dpe.db"), Listen: "127.0.0.1:0", ShutdownGrace: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server run: %v", err)
		}
	})
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("server stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready in 30s")
	}
	c, err := client.New(client.Config{URLs: []string{srv.URL()}, Deadline: 10 * time.Second, HTTP: &http.Client{Transport: rec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// must takes a call's (value, error) and returns a check that fails the
// test on the error and gives the value: must(c.GetJob(ctx, id))(t).
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// ok fails the test on err.
func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// jobRoutes drives every job and processor method: submit, list, get,
// priority, cancel, claim, heartbeat, progress, complete, release,
// processors, types, status.
func jobRoutes(t *testing.T, c *client.Client) {
	ctx := t.Context()

	ok(t, c.Health(ctx))
	ok(t, c.Ready(ctx))

	var status int
	j := must(c.SubmitJob(ctx, model.JobSpec{Type: "noop", Key: "k1", Priority: 5}, client.WithStatus(&status)))(t)
	if status != http.StatusCreated || j.ID == 0 || j.State != model.JobQueued {
		t.Fatalf("submit: status %d, job %+v", status, j)
	}
	again := must(c.SubmitJob(ctx, model.JobSpec{Type: "noop", Key: "k1"}, client.WithStatus(&status)))(t)
	if status != http.StatusOK || again.ID != j.ID {
		t.Fatalf("submit of the same key: status %d, job %d, want 200 and job %d", status, again.ID, j.ID)
	}
	batch := must(c.SubmitJobs(ctx, []model.JobSpec{{Type: "noop"}, {Type: "noop"}, {Type: "noop"}}))(t)
	if len(batch) != 3 {
		t.Fatalf("batch: %d jobs, want 3", len(batch))
	}
	if _, err := c.SubmitJob(ctx, model.JobSpec{Type: "audio.nope"}); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("unknown type: %v, want ErrInvalid", err)
	}

	if got := must(c.GetJob(ctx, j.ID))(t); got.ID != j.ID || got.Priority != 5 {
		t.Fatalf("get: %+v", got)
	}
	if _, err := c.GetJob(ctx, 99999); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("get of a missing job: %v, want ErrNotFound", err)
	}
	ok(t, c.AppendJobLog(ctx, j.ID, wire.LogAppend{Lines: []model.LogEntry{{Message: "one"}, {Level: model.LogWarn, Message: "two"}}}))
	if err := c.AppendJobLog(ctx, j.ID, wire.LogAppend{Lines: []model.LogEntry{{Level: "loud", Message: "x"}}}); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("log line of an unknown level: %v, want ErrInvalid", err)
	}
	if lp := must(c.JobLog(ctx, j.ID, client.LogQuery{Limit: 1}))(t); len(lp.Lines) != 1 || lp.Lines[0].Message != "one" || lp.Next != lp.Lines[0].Seq {
		t.Fatalf("job log, limit 1: %+v", lp)
	} else if rest := must(c.JobLog(ctx, j.ID, client.LogQuery{After: lp.Next}))(t); len(rest.Lines) != 1 || rest.Lines[0].Level != model.LogWarn {
		t.Fatalf("job log after %d: %+v", lp.Next, rest)
	}
	if _, err := c.JobLog(ctx, 99999, client.LogQuery{}); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("log of a missing job: %v, want ErrNotFound", err)
	}
	if got := must(c.SetJobPriority(ctx, j.ID, 900))(t); got.Priority != 900 {
		t.Fatalf("priority: %d, want 900", got.Priority)
	}
	if got := must(c.CancelJob(ctx, batch[2].ID))(t); got.State != model.JobCanceled {
		t.Fatalf("cancel of a queued job: %s", got.State)
	}
	if got := must(c.RetryJob(ctx, batch[2].ID))(t); got.State != model.JobQueued || got.Attempt != 0 {
		t.Fatalf("retry of a canceled job: %s attempt %d, want queued attempt 0", got.State, got.Attempt)
	}
	if _, err := c.RetryJob(ctx, batch[2].ID); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("retry of a queued job: %v, want ErrConflict", err)
	}
	if got := must(c.CancelJob(ctx, batch[2].ID))(t); got.State != model.JobCanceled {
		t.Fatalf("cancel of the retried job: %s", got.State)
	}

	page := must(c.ListJobs(ctx, client.JobQuery{States: []model.JobState{model.JobQueued}, Limit: 2}))(t)
	if page.Total != 3 || len(page.Items) != 2 || page.Next == "" {
		t.Fatalf("list: total %d, %d items, next %q; want 3, 2 and a cursor", page.Total, len(page.Items), page.Next)
	}
	var walked []int64
	for job, err := range c.AllJobs(ctx, client.JobQuery{Types: []string{"noop"}, Limit: 1}) {
		if err != nil {
			t.Fatal(err)
		}
		walked = append(walked, job.ID)
	}
	if len(walked) != 4 {
		t.Fatalf("AllJobs walked %v, want the 4 jobs", walked)
	}

	// A processor announces itself, claims the top job and works it.
	ok(t, c.PutProcessor(ctx, model.Processor{ID: "p 1", Quota: map[string]int{"noop": 2}}))
	procs := must(c.ListProcessors(ctx))(t)
	if !slices.ContainsFunc(procs, func(p model.Processor) bool { return p.ID == "p 1" }) {
		t.Fatalf("processors %+v lack p 1", procs)
	}
	claimed := must(c.Claim(ctx, model.ClaimRequest{Processor: "p 1", Slots: map[string]int{"noop": 2}}))(t)
	if len(claimed) != 2 || claimed[0].ID != j.ID {
		t.Fatalf("claim: %+v, want 2 jobs, job %d first (priority 900)", claimed, j.ID)
	}
	hb := must(c.Heartbeat(ctx, wireHeartbeat("p 1", claimed)))(t)
	if len(hb) != 2 || hb[0].Status != model.LeaseOK {
		t.Fatalf("heartbeat: %+v", hb)
	}
	p := 40
	pr := must(c.Progress(ctx, model.Heartbeat{ID: claimed[0].ID, Epoch: claimed[0].Epoch, Progress: &p}))(t)
	if pr.Status != model.LeaseOK {
		t.Fatalf("progress: %+v", pr)
	}
	if _, err := c.Progress(ctx, model.Heartbeat{ID: claimed[0].ID, Epoch: claimed[0].Epoch + 7}); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("progress of a stale epoch: %v, want ErrConflict", err)
	}
	done := must(c.Complete(ctx, model.Completion{ID: claimed[0].ID, Epoch: claimed[0].Epoch, Result: []byte(`{"ok":true}`)}))(t)
	if done.State != model.JobSucceeded {
		t.Fatalf("complete: %s", done.State)
	}
	if _, err := c.Complete(ctx, model.Completion{ID: claimed[0].ID, Epoch: claimed[0].Epoch + 1}); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("complete of a stale epoch: %v, want ErrConflict", err)
	}
	back := must(c.Release(ctx, claimed[1].ID, claimed[1].Epoch))(t)
	if back.State != model.JobQueued {
		t.Fatalf("release: %s, want queued", back.State)
	}
	again2 := must(c.Claim(ctx, model.ClaimRequest{Processor: "p 1", Slots: map[string]int{"noop": 5}}))(t)
	comps := make([]model.Completion, len(again2))
	for i, x := range again2 {
		comps[i] = model.Completion{ID: x.ID, Epoch: x.Epoch}
	}
	comps = append(comps, model.Completion{ID: claimed[0].ID, Epoch: claimed[0].Epoch + 1})
	res := must(c.CompleteMany(ctx, comps))(t)
	for i, r := range res[:len(again2)] {
		if r.Status != http.StatusOK || r.Job == nil || r.Job.State != model.JobSucceeded {
			t.Errorf("completion %d: %+v", i, r)
		}
	}
	if last := res[len(res)-1]; last.Status != http.StatusConflict || last.Error == "" {
		t.Errorf("completion of an ended job: %+v, want 409", last)
	}

	tl := must(c.PutType(ctx, wire.TypeSet{Type: "noop", MaxRunning: ptr(3)}))(t)
	if tl.MaxRunning != 3 {
		t.Fatalf("put type: %+v", tl)
	}
	// Only the fields given change: a rate keeps the max running.
	tl = must(c.PutType(ctx, wire.TypeSet{Type: "noop", Rate: ptr(10.0)}))(t)
	if tl.MaxRunning != 3 || tl.Rate != 10 || tl.Burst != 10 {
		t.Fatalf("put type rate: %+v, want max running 3 kept, rate 10, burst 10", tl)
	}
	if _, err := c.PutType(ctx, wire.TypeSet{Type: "nosuch.type", MaxRunning: ptr(1)}); !errors.Is(err, model.ErrInvalid) ||
		!strings.Contains(err.Error(), "known: ") {
		t.Fatalf("put of an unknown type: %v, want invalid listing the known types", err)
	}
	if tl := must(c.PutType(ctx, wire.TypeSet{Type: "nosuch.type", MaxRunning: ptr(1), Create: true}))(t); tl.MaxRunning != 1 {
		t.Fatalf("put type --create: %+v", tl)
	}
	types := must(c.ListTypes(ctx))(t)
	if !slices.ContainsFunc(types, func(l model.TypeLimit) bool { return l.Type == "noop" && l.MaxRunning == 3 }) {
		t.Fatalf("types %+v lack noop max 3", types)
	}
	st := must(c.Status(ctx))(t)
	if !st.Server.Ready || st.Server.DB != "sqlite" || st.Jobs[model.JobSucceeded] != 3 {
		t.Fatalf("status: server %+v, jobs %v", st.Server, st.Jobs)
	}
}

// wireHeartbeat is a batched heartbeat of processor for jobs.
func wireHeartbeat(processor string, jobs []model.Job) wire.HeartbeatRequest {
	req := wire.HeartbeatRequest{Processor: processor}
	for _, j := range jobs {
		req.Jobs = append(req.Jobs, model.Heartbeat{ID: j.ID, Epoch: j.Epoch})
	}
	return req
}

const testTemplate = `
name: two
args:
  file: {type: string}
steps:
  - {id: work, job: noop}
`

// workflowRoutes drives the template, workflow and worker methods.
func workflowRoutes(t *testing.T, c *client.Client) {
	ctx := t.Context()

	imp := must(c.ImportTemplate(ctx, []byte(testTemplate), "application/yaml"))(t)
	if !imp.Created || imp.Template.Name != "two" || imp.Template.Version != 1 {
		t.Fatalf("import: %+v", imp)
	}
	if imp = must(c.ImportTemplate(ctx, []byte(testTemplate), ""))(t); imp.Created {
		t.Fatalf("import of the same source: %+v, want not created", imp)
	}
	if _, err := c.ImportTemplate(ctx, []byte("name: [broken"), "application/yaml"); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("import of a broken template: %v, want ErrInvalid", err)
	}
	if list := must(c.ListTemplates(ctx))(t); len(list) != 1 || list[0].Name != "two" {
		t.Fatalf("templates: %+v", list)
	}
	if tpl := must(c.GetTemplate(ctx, "two", 1))(t); tpl.Source == "" || tpl.Version != 1 {
		t.Fatalf("get template: %+v", tpl)
	}
	if tpl := must(c.GetTemplate(ctx, "two", 0))(t); tpl.Version != 1 {
		t.Fatalf("get latest template: %+v", tpl)
	}

	var status int
	inst := must(c.StartWorkflow(ctx, model.InstanceSpec{Template: "two", Name: "w1"}, client.WithStatus(&status)))(t)
	if status != http.StatusCreated || inst.State != model.InstancePending {
		t.Fatalf("start: status %d, %+v", status, inst)
	}
	if again := must(c.StartWorkflow(ctx, model.InstanceSpec{Template: "two", Name: "w1"}, client.WithStatus(&status)))(t); status != http.StatusOK || again.ID != inst.ID {
		t.Fatalf("start of the same name: status %d, instance %d", status, again.ID)
	}
	if lp := must(c.WorkflowLog(ctx, inst.ID, client.LogQuery{After: 7}))(t); len(lp.Lines) != 0 || lp.Next != 7 {
		t.Fatalf("log of a new instance: %+v, want none and the cursor kept", lp)
	}
	starts := must(c.StartWorkflows(ctx, []model.InstanceSpec{{Template: "two", Name: "w2"}, {Template: "two", Name: "w1"}, {Template: "nope"}}))(t)
	if starts[0].Status != http.StatusCreated || starts[1].Status != http.StatusOK || starts[1].Instance.ID != inst.ID || starts[2].Status != http.StatusUnprocessableEntity {
		t.Fatalf("batch start: %+v", starts)
	}
	w2 := starts[0].Instance

	page := must(c.ListWorkflows(ctx, client.WorkflowQuery{Templates: []string{"two"}, States: []model.InstanceState{model.InstancePending}, Limit: 1}))(t)
	if page.Total != 2 || len(page.Items) != 1 || page.Next == "" {
		t.Fatalf("list: total %d, %d items, next %q", page.Total, len(page.Items), page.Next)
	}
	next := must(c.ListWorkflows(ctx, client.WorkflowQuery{Templates: []string{"two"}, Limit: 1, After: page.Next}))(t)
	if len(next.Items) != 1 || next.Items[0].ID == page.Items[0].ID {
		t.Fatalf("second page: %+v", next.Items)
	}
	if byName := must(c.ListWorkflows(ctx, client.WorkflowQuery{Name: "w2"}))(t); byName.Total != 1 || byName.Items[0].ID != w2.ID {
		t.Fatalf("list by name: %+v", byName)
	}
	if none := must(c.ListWorkflows(ctx, client.WorkflowQuery{Name: "nobody"}))(t); none.Total != 0 || len(none.Items) != 0 {
		t.Fatalf("list by a missing name: %+v", none)
	}
	if got := must(c.SetWorkflowPriority(ctx, w2.ID, 700))(t); got.Priority != 700 {
		t.Fatalf("workflow priority: %d", got.Priority)
	}
	if d := must(c.GetWorkflow(ctx, inst.ID))(t); d.Instance.ID != inst.ID || d.Instance.Name != "w1" {
		t.Fatalf("get workflow: %+v", d.Instance)
	}
	if _, err := c.GetWorkflow(ctx, 99999); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("get of a missing workflow: %v, want ErrNotFound", err)
	}

	// A worker claims both (w2 first: priority 700), advances them.
	ans := must(c.ClaimInstances(ctx, model.InstanceClaimRequest{Worker: "wk", Default: 10, Limit: 10, Detail: true}))(t)
	if len(ans.Items) != 2 || len(ans.Details) != 2 || ans.Items[0].ID != w2.ID {
		t.Fatalf("claim instances: %+v", ans.Items)
	}
	byID := map[int64]model.Instance{}
	for _, i := range ans.Items {
		byID[i.ID] = i
	}
	det := must(c.GetInstance(ctx, inst.ID))(t)
	if det.Instance.Worker != "wk" {
		t.Fatalf("worker detail: %+v", det.Instance)
	}
	lost := must(c.WorkerHeartbeat(ctx, model.InstanceLeases{Worker: "wk", IDs: []int64{inst.ID, w2.ID, 99999}}))(t)
	if !slices.Equal(lost, []int64{99999}) {
		t.Fatalf("heartbeat lost %v, want [99999]", lost)
	}
	one := byID[inst.ID]
	adv := model.Advance{InstanceID: one.ID, Worker: "wk", Epoch: one.Epoch, WakeSeq: one.WakeSeq, State: model.InstanceRunning, Progress: 50}
	if got := must(c.AdvanceInstance(ctx, adv))(t); got.Progress != 50 || got.State != model.InstanceRunning {
		t.Fatalf("advance: %+v", got)
	}
	stale := adv
	stale.Epoch++
	if _, err := c.AdvanceInstance(ctx, stale); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("advance of a stale epoch: %v, want ErrConflict", err)
	}
	two := byID[w2.ID]
	results := must(c.AdvanceInstances(ctx, []model.Advance{
		{InstanceID: two.ID, Worker: "wk", Epoch: two.Epoch, WakeSeq: two.WakeSeq, State: model.InstanceSucceeded, Progress: 100},
		{InstanceID: one.ID, Worker: "wk", Epoch: one.Epoch + 5, State: model.InstanceRunning},
	}))(t)
	if results[0].Status != http.StatusOK || results[0].Instance.State != model.InstanceSucceeded {
		t.Errorf("advance of w2: %+v", results[0])
	}
	if results[1].Status != http.StatusConflict {
		t.Errorf("advance of w1 at a stale epoch: %+v, want 409", results[1])
	}
	ok(t, c.WorkerRelease(ctx, model.InstanceLeases{Worker: "wk", IDs: []int64{inst.ID}}))
	if d := must(c.GetWorkflow(ctx, inst.ID))(t); d.Instance.Worker != "" {
		t.Fatalf("after release the instance is still held by %q", d.Instance.Worker)
	}
	if got := must(c.CancelWorkflow(ctx, inst.ID))(t); got.ID != inst.ID {
		t.Fatalf("cancel workflow: %+v", got)
	}
	if _, err := c.RetryWorkflow(ctx, inst.ID); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("retry of an instance not failed: %v, want ErrConflict", err)
	}

	// A template with a running instance stays; one without goes.
	if err := c.DeleteTemplate(ctx, "two"); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("delete of a template in use: %v, want ErrConflict", err)
	}
	must(c.ImportTemplate(ctx, []byte("name: spare\nsteps:\n  - {id: work, job: noop}\n"), "application/yaml"))(t)
	ok(t, c.DeleteTemplate(ctx, "spare"))
	if _, err := c.GetTemplate(ctx, "spare", 0); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("get of a deleted template: %v, want ErrNotFound", err)
	}
}

// triggerAndLeaseRoutes drives the trigger and named-lease methods.
func triggerAndLeaseRoutes(t *testing.T, c *client.Client) {
	ctx := t.Context()
	must(c.ImportTemplate(ctx, []byte(testTemplate), "application/yaml"))(t)

	if _, err := c.GetTrigger(ctx, "tick"); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("trigger before its first fire: %v, want ErrNotFound", err)
	}
	fired := must(c.Fire(ctx, "tick", model.FireRequest{Kind: model.TriggerSchedule, Fires: []model.Start{
		{Key: "2026-12-06T10:00:00Z", Instance: model.InstanceSpec{Template: "two", Name: "tick-1"}},
	}}))(t)
	if len(fired.Records) != 1 || fired.Records[0].Instance == "" || fired.Trigger.Name != "tick" {
		t.Fatalf("fire: %+v", fired)
	}
	if _, err := c.Fire(ctx, "tick", model.FireRequest{Kind: model.TriggerFolder}); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("fire of a folder kind: %v, want ErrInvalid", err)
	}
	seen := must(c.Observe(ctx, "inbox", model.Observation{
		Kind: model.TriggerFolder, Pass: "p1", Complete: true, FirstStart: "fire",
		Items: []model.ObservedItem{{Key: "a.wav", Fingerprint: "1"}},
		On:    map[string]model.EventAction{"created": {Template: "two"}},
	}))(t)
	if len(seen.Records) != 1 || seen.Trigger.Kind != model.TriggerFolder {
		t.Fatalf("observe: %+v", seen)
	}
	ok(t, c.ReportTriggerError(ctx, "inbox", model.TriggerFolder, "folder missing"))
	tr := must(c.GetTrigger(ctx, "inbox"))(t)
	if tr.LastError != "folder missing" {
		t.Fatalf("trigger error: %+v", tr)
	}
	ok(t, c.ReportTriggerError(ctx, "inbox", model.TriggerFolder, ""))
	if tr = must(c.GetTrigger(ctx, "inbox"))(t); tr.LastError != "" {
		t.Fatalf("trigger error after clearing: %q", tr.LastError)
	}
	list := must(c.ListTriggers(ctx))(t)
	if len(list) != 2 {
		t.Fatalf("triggers: %+v", list)
	}
	recs := must(c.TriggerRecords(ctx, "tick", 10))(t)
	if len(recs) != 1 || recs[0].Key != "2026-12-06T10:00:00Z" {
		t.Fatalf("records: %+v", recs)
	}

	// Fire now needs the config a scheduler reports in its state; a
	// paused schedule starts nothing, neither by fire now nor by fire.
	if _, err := c.FireScheduleNow(ctx, "tick"); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("fire now before the config is reported: %v, want ErrInvalid", err)
	}
	if _, err := c.FireScheduleNow(ctx, "inbox"); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("fire now of a folder watcher: %v, want ErrInvalid", err)
	}
	must(c.Fire(ctx, "tick", model.FireRequest{Kind: model.TriggerSchedule, Fires: []model.Start{},
		State: []byte(`{"last":"2026-12-06T10:00:00Z","spec":{"cron":"0 * * * *","template":"two"}}`)}))(t)
	if tr := must(c.GetTrigger(ctx, "tick"))(t); tr.Schedule == nil || tr.Schedule.Cron != "0 * * * *" || len(tr.Next) != 3 || tr.Next[0].Minute() != 0 {
		t.Fatalf("schedule and next fires: %+v", tr)
	}
	now := must(c.FireScheduleNow(ctx, "tick"))(t)
	if len(now.Records) != 1 || now.Records[0].Action != model.RecordStarted || !strings.HasPrefix(now.Records[0].Instance, "schedule/tick/manual/") {
		t.Fatalf("fire now: %+v", now.Records)
	}
	if p := must(c.PauseTrigger(ctx, "tick"))(t); !p.Paused || p.PausedAt == nil || len(p.Next) != 0 {
		t.Fatalf("pause: %+v", p)
	}
	if _, err := c.FireScheduleNow(ctx, "tick"); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("fire now while paused: %v, want ErrConflict", err)
	}
	paused := must(c.Fire(ctx, "tick", model.FireRequest{Kind: model.TriggerSchedule, Fires: []model.Start{
		{Key: "2026-12-06T11:00:00Z", Instance: model.InstanceSpec{Template: "two", Name: "tick-2"}},
	}}))(t)
	if len(paused.Records) != 1 || paused.Records[0].Action != model.RecordSkipped || paused.Records[0].InstanceID != 0 {
		t.Fatalf("fire while paused: %+v", paused.Records)
	}
	if r := must(c.ResumeTrigger(ctx, "tick"))(t); r.Paused || len(r.Next) != 3 {
		t.Fatalf("resume: %+v", r)
	}
	if _, err := c.PauseTrigger(ctx, "nothing"); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("pause of an unknown trigger: %v, want ErrNotFound", err)
	}

	// Named leases: the holder renews, another is refused until release.
	l := must(c.LeaseAcquire(ctx, "trigger/tick", "a", 5*time.Second))(t)
	if l.Holder != "a" || l.Epoch == 0 {
		t.Fatalf("acquire: %+v", l)
	}
	if renewed := must(c.LeaseAcquire(ctx, "trigger/tick", "a", 5*time.Second))(t); renewed.Epoch != l.Epoch {
		t.Fatalf("renewal changed the epoch: %d to %d", l.Epoch, renewed.Epoch)
	}
	if _, err := c.LeaseAcquire(ctx, "trigger/tick", "b", 5*time.Second); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("acquire of a held lease: %v, want ErrConflict", err)
	}
	if _, err := c.LeaseAcquire(ctx, "trigger/tick", "b", time.Hour); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("acquire with a TTL over the limit: %v, want ErrInvalid", err)
	}
	if leases := must(c.ListLeases(ctx, "trigger/"))(t); len(leases) != 1 || leases[0].Holder != "a" {
		t.Fatalf("leases: %+v", leases)
	}
	if active := must(c.ListTriggers(ctx))(t); !slices.ContainsFunc(active, func(x model.Trigger) bool { return x.Name == "tick" && x.Active == "a" }) {
		t.Fatalf("triggers do not show a as the active copy of tick: %+v", active)
	}
	ok(t, c.LeaseRelease(ctx, "trigger/tick", "a"))
	if l2 := must(c.LeaseAcquire(ctx, "trigger/tick", "b", 5*time.Second))(t); l2.Holder != "b" || l2.Epoch <= l.Epoch {
		t.Fatalf("acquire after release: %+v", l2)
	}
	if none := must(c.ListLeases(ctx, "other/"))(t); len(none) != 0 {
		t.Fatalf("leases under other/: %+v", none)
	}
}

func ptr[T any](v T) *T { return &v }

// tokenRoutes creates, lists and revokes tokens. The first token switches
// auth on: the calls after it carry the new admin token.
func tokenRoutes(t *testing.T, anon *client.Client, rec *recorder) {
	ctx := t.Context()
	created := must(anon.CreateToken(ctx, wire.TokenRequest{Name: "root", Role: model.RoleAdmin}))(t)
	if created.Secret == "" || created.Token.Name != "root" || created.Token.Role != model.RoleAdmin {
		t.Fatalf("create: %+v", created)
	}
	var ae *client.APIError
	if _, err := anon.ListTokens(ctx); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Fatalf("list without a token once one exists: %v, want 401", err)
	}
	c, err := client.New(client.Config{URLs: anon.URLs(), Token: created.Secret, Deadline: 10 * time.Second, HTTP: &http.Client{Transport: rec}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	must(c.CreateToken(ctx, wire.TokenRequest{Name: "farm", Role: model.RoleProcessor}))(t)
	list := must(c.ListTokens(ctx))(t)
	if len(list) != 2 || list[0].Name != "farm" || list[1].Name != "root" {
		t.Fatalf("list: %+v", list)
	}
	ok(t, c.RevokeToken(ctx, "farm"))
	if err := c.RevokeToken(ctx, "farm"); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("revoke twice: %v, want ErrNotFound", err)
	}
	// The audit trail holds the revocations (written just after their
	// answers) and the anonymous first create.
	revoked := client.AuditQuery{Principal: "root", Route: "DELETE /v1/tokens/{name}", Limit: 1}
	page := eventually.Value(t, 10*time.Second, func() (*wire.AuditPage, error) { return c.ListAudit(ctx, revoked) },
		func(p *wire.AuditPage) bool { return p.Total == 2 }, "two revocations by root in the audit trail")
	if len(page.Items) != 1 || page.Next == "" || page.Items[0].Status != http.StatusNotFound || page.Items[0].Target != "name=farm" {
		t.Fatalf("audit, newest revocation: %+v", page)
	}
	revoked.Cursor = page.Next
	page = must(c.ListAudit(ctx, revoked))(t)
	if len(page.Items) != 1 || page.Items[0].Status != http.StatusNoContent || page.Items[0].Role != model.RoleAdmin {
		t.Fatalf("audit, second page: %+v", page)
	}
	first := must(c.ListAudit(ctx, client.AuditQuery{Principal: "-", Route: "POST /v1/tokens"}))(t)
	if first.Total != 1 || first.Items[0].Status != http.StatusCreated {
		t.Fatalf("audit, the create made before auth was on: %+v", first)
	}
}

func alertRoutes(t *testing.T, c *client.Client) {
	ctx := t.Context()
	list := must(c.ListAlerts(ctx))(t)
	if list.Items == nil || len(list.Items) != 0 || list.Firing != 0 || list.Rules == nil {
		t.Fatalf("alerts of a fresh server: %+v", list)
	}
	// No receiver configured: the test is refused, naming what to add.
	if _, err := c.TestAlerts(ctx); !errors.Is(err, model.ErrInvalid) || !strings.Contains(err.Error(), "alerts.receivers") {
		t.Fatalf("test without receivers: %v, want invalid naming alerts.receivers", err)
	}
}
