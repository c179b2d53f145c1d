package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/dpe-engine/dpe/internal/coredb"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/testdb"
)

// TestLoadPages loads a small plant (1,000 instances, 10,000 jobs) into a
// core database migrated by the store, then reads it back through the
// store: every row must be one the store can scan, and the counts and
// relations the pages phase relies on must hold.
func TestLoadPages(t *testing.T) {
	engines := []struct {
		name string
		db   func(t *testing.T) *coreDB
	}{
		{"sqlite", func(t *testing.T) *coreDB {
			p := filepath.Join(t.TempDir(), "core.db")
			return &coreDB{engine: "sqlite", dsn: "sqlite:" + p, path: p}
		}},
		{"postgres", func(t *testing.T) *coreDB {
			return &coreDB{engine: "postgres", dsn: testdb.Postgres(t)}
		}},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := t.Context()
			db := e.db(t)
			st, err := coredb.Open(ctx, db.dsn, slog.New(slog.DiscardHandler)) // migrates
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			if err := db.connect(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.sql.Close() })
			const instances, jobs = 1000, 10_000
			ld, err := db.loadPages(ctx, instances, jobs)
			if err != nil {
				t.Fatal(err)
			}
			if ld.Instances != instances || ld.Jobs != jobs || ld.Steps != ld.AttachedJobs {
				t.Fatalf("loaded %+v; want %d instances, %d jobs, a step per job of an instance", ld, instances, jobs)
			}
			checkLoaded(ctx, t, st, ld)
		})
	}
}

func checkLoaded(ctx context.Context, t *testing.T, st store.Store, ld pageLoad) {
	t.Helper()
	ws := store.WorkflowStore(st)
	page, err := ws.InstanceList(ctx, model.InstanceFilter{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != ld.Instances || len(page.Items) != 50 || page.Items[0].ID != ld.MaxInstance {
		t.Fatalf("instance list: total %d, %d items; want %d and 50, newest %d first", page.Total, len(page.Items), ld.Instances, ld.MaxInstance)
	}
	states := map[model.InstanceState]int{}
	for _, s := range []model.InstanceState{model.InstancePending, model.InstanceRunning, model.InstanceSucceeded, model.InstanceFailed, model.InstanceCanceled} {
		p, err := ws.InstanceList(ctx, model.InstanceFilter{States: []model.InstanceState{s}, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		states[s] = p.Total
		if p.Total == 0 {
			t.Errorf("no instance %s: want every state", s)
		}
	}
	// The newest instance of each template: the name the phase asks for.
	for n := int64(ld.Instances - len(pageTemplates) + 1); n <= int64(ld.Instances); n++ {
		name := fmt.Sprintf("%s-%07d", pageTemplates[n%int64(len(pageTemplates))].name, n)
		inst, err := ws.InstanceGetByName(ctx, name)
		if err != nil {
			t.Fatalf("instance %s: %v", name, err)
		}
		if inst.ID != ld.MinInstance+n-1 {
			t.Errorf("instance %s has id %d, want %d", name, inst.ID, ld.MinInstance+n-1)
		}
	}
	// A finished instance: three steps, each with its job.
	var done model.Instance
	for _, i := range page.Items {
		if i.State == model.InstanceSucceeded {
			done = i
			break
		}
	}
	if done.ID == 0 {
		t.Fatal("no succeeded instance among the newest 50")
	}
	steps, err := ws.InstanceSteps(ctx, done.ID)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := st.JobList(ctx, model.JobFilter{InstanceID: done.ID, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 3 || jobs.Total != 3 {
		t.Fatalf("instance %d: %d steps, %d jobs; want 3 and 3", done.ID, len(steps), jobs.Total)
	}
	for _, s := range steps {
		j, err := st.JobGet(ctx, s.JobID)
		if err != nil {
			t.Fatalf("step %s: job %d: %v", s.Path, s.JobID, err)
		}
		if j.InstanceID != done.ID || j.Step != s.Path || j.State != model.JobSucceeded || s.State != model.StepSucceeded {
			t.Errorf("step %+v, job %+v: want the instance's succeeded job of that step", s, j)
		}
	}
	all, err := st.JobList(ctx, model.JobFilter{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	counts, err := st.JobCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, n := range counts {
		sum += n
	}
	if all.Total != ld.Jobs || sum != ld.Jobs || counts[model.JobQueued] == 0 || counts[model.JobRunning] == 0 || counts[model.JobFailed] == 0 {
		t.Errorf("jobs: total %d, counts %v; want %d of every state", all.Total, counts, ld.Jobs)
	}
	t.Logf("instances by state %v, jobs by state %v", states, counts)
}
