package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/testdb"
)

const fiveSteps = `name: five
description: five job steps in a row
steps:
  - {id: step1, job: noop, params: {sleep: 10ms}}
  - {id: step2, job: noop, params: {sleep: 10ms}}
  - {id: step3, job: noop, params: {sleep: 10ms}}
  - {id: step4, job: noop, params: {sleep: 10ms}}
  - {id: step5, job: noop, params: {sleep: 10ms}}
`

// TestWorkersSurviveSIGKILL: two concurrent workers and a standby pair
// drive 300 instances of a 5-step template on PostgreSQL while workers are
// SIGKILLed and restarted again and again. Every instance succeeds and
// every step's job exists once and succeeded once.
func TestWorkersSurviveSIGKILL(t *testing.T) {
	dsn := testdb.Postgres(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	url := "http://" + addr
	startDPE(t, "server", dir, "server", "--db", dsn, "--listen", addr)
	c := newClient(t, url)
	waitReady(t, c, 60*time.Second)
	for i := range 2 {
		startDPE(t, fmt.Sprintf("p%d", i), dir, "processor", "--server", url, "--quota", "noop=16", "--lease-ttl", "3s")
	}
	tpl := filepath.Join(dir, "five.yaml")
	if err := os.WriteFile(tpl, []byte(fiveSteps), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runDPE(t, dir, "template", "import", tpl, "--server", url); code != 0 {
		t.Fatalf("template import: %s %s", out, errOut)
	}

	workerArgs := [][]string{
		{"--mode", "concurrent", "--id", "c0"},
		{"--mode", "concurrent", "--id", "c1"},
		{"--mode", "standby", "--group", "pair", "--id", "s0"},
		{"--mode", "standby", "--group", "pair", "--id", "s1"},
	}
	startWorker := func(i int) *proc {
		args := append([]string{"worker", "--server", url, "--lease-ttl", "3s", "--group-ttl", "2s"}, workerArgs[i]...)
		return startDPE(t, workerArgs[i][3]+"-"+strconv.Itoa(rand.N(1000)), dir, args...)
	}
	workers := make([]*proc, len(workerArgs))
	for i := range workers {
		workers[i] = startWorker(i)
	}

	ctx := context.Background()
	const total = 300
	for i := range total {
		spec := model.InstanceSpec{Template: "five", Name: fmt.Sprintf("five-%03d", i)}
		if _, err := c.StartWorkflow(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}

	// Kill a random worker every 1.5 s for 15 s, restarting it at once.
	kills := 0
	stopKilling := time.Now().Add(15 * time.Second)
	for time.Now().Before(stopKilling) {
		time.Sleep(1500 * time.Millisecond)
		i := rand.N(len(workers))
		workers[i].kill()
		workers[i] = startWorker(i)
		kills++
	}
	t.Logf("%d workers SIGKILLed", kills)

	succeeded := 0
	if !eventually.Within(3*time.Minute, func() bool {
		page, err := c.ListWorkflows(ctx, client.WorkflowQuery{States: []model.InstanceState{model.InstanceSucceeded}, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		succeeded = page.Total
		return succeeded == total
	}) {
		rest, err := c.ListWorkflows(ctx, client.WorkflowQuery{States: []model.InstanceState{model.InstancePending, model.InstanceRunning, model.InstanceFailed, model.InstanceCanceled}, Limit: 5})
		if err != nil {
			rest = &model.Page[model.Instance]{}
		}
		t.Fatalf("%d of %d instances succeeded after 3 minutes; others: %+v", succeeded, total, rest.Items)
	}

	// Count the job rows: exactly one per (instance, step), all succeeded.
	perStep := map[string]int{}
	jobs := 0
	for j, err := range c.AllJobs(ctx, client.JobQuery{Limit: 1000}) {
		if err != nil {
			t.Fatal(err)
		}
		jobs++
		if j.State != model.JobSucceeded {
			t.Errorf("job %d (instance %d step %s) %s", j.ID, j.InstanceID, j.Step, j.State)
		}
		perStep[fmt.Sprintf("%d/%s", j.InstanceID, j.Step)]++
	}
	if jobs != total*5 || len(perStep) != total*5 {
		t.Fatalf("%d job rows for %d distinct steps, want %d", jobs, len(perStep), total*5)
	}
	for k, n := range perStep {
		if n != 1 {
			t.Errorf("step %s has %d jobs", k, n)
		}
	}
}
