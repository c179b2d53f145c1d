package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/testdb"
)

// TestUpChecksum is the README's first-run promise: `dpe up` on a fresh
// directory starts, and a checksum job submitted with --wait prints the
// checksum of README.md.
func TestUpChecksum(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(readme)
	addr := freeAddr(t)
	up := startDPE(t, "dpe up", repo, "up", "--data", t.TempDir(), "--listen", addr)
	up.waitLine("dpe is up", 60*time.Second)

	out, errOut, code := runDPE(t, repo, "job", "submit", "util.checksum", "--param", "path=README.md", "--wait", "--server", "http://"+addr)
	if code != 0 {
		t.Fatalf("job submit exited %d:\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, hex.EncodeToString(sum[:])) {
		t.Fatalf("output lacks the sha256 of README.md %x:\n%s", sum, out)
	}
	if !strings.Contains(out, "succeeded") {
		t.Fatalf("output does not say succeeded:\n%s", out)
	}

	// A failing job with --wait exits non-zero (exit code 3).
	out, _, code = runDPE(t, repo, "job", "submit", "noop", "--param", "fail=true", "--max-attempts", "1", "--wait", "--server", "http://"+addr)
	if code != exitNotGreen {
		t.Fatalf("failing job: exit %d, want %d:\n%s", code, exitNotGreen, out)
	}
	// A bad flag is a usage error and submits nothing.
	_, errOut, code = runDPE(t, repo, "job", "submit", "noop", "--priority", "x", "--server", "http://"+addr)
	if code != exitUsage || !strings.Contains(errOut, "priority") {
		t.Fatalf("bad flag: exit %d, want %d, stderr %q", code, exitUsage, errOut)
	}
	// -o json list shape of DESIGN §9.
	out, _, code = runDPE(t, repo, "job", "list", "-o", "json", "--limit", "1", "--server", "http://"+addr)
	if code != 0 || !strings.Contains(out, `"items"`) || !strings.Contains(out, `"total": 2`) || !strings.Contains(out, `"next"`) {
		t.Fatalf("job list -o json: exit %d:\n%s", code, out)
	}
	if err := up.stop(30 * time.Second); err != nil {
		t.Fatalf("dpe up did not stop cleanly: %v\n%s", err, up.output())
	}
}

// TestFarmSurvivesSIGKILL: a server on PostgreSQL and three processors work
// 2,000 jobs; one processor is SIGKILLed mid-run. Every job succeeds, the
// dead processor's jobs run again after their lease expired, and a
// completion with the stale epoch is refused with 409.
func TestFarmSurvivesSIGKILL(t *testing.T) {
	dsn := testdb.Postgres(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	url := "http://" + addr
	srv := startDPE(t, "server", dir, "server", "--db", dsn, "--listen", addr)
	c := newClient(t, url)
	waitReady(t, c, 60*time.Second)
	_ = srv

	const ttl = "2s"
	procs := make([]*proc, 3)
	for i := range procs {
		id := fmt.Sprintf("p%d", i)
		procs[i] = startDPE(t, id, dir, "processor", "--server", url, "--id", id, "--quota", "noop=8", "--lease-ttl", ttl)
	}

	ctx := context.Background()
	const total = 2000
	var specs []model.JobSpec
	for range total {
		specs = append(specs, model.JobSpec{Type: "noop", Params: []byte(`{"sleep":"20ms"}`)})
	}
	for i := 0; i < total; i += 500 {
		if _, err := c.SubmitJobs(ctx, specs[i:i+500]); err != nil {
			t.Fatal(err)
		}
	}

	// Wait until p0 holds running jobs; freeze it (SIGSTOP), give requests
	// it had in flight time to land, then snapshot what it still holds:
	// those are exactly the jobs only a lease expiry can free.
	var held []model.Job
	eventually.True(t, 60*time.Second, func() bool {
		_ = procs[0].cmd.Process.Signal(syscall.SIGSTOP)
		time.Sleep(300 * time.Millisecond)
		page, err := c.ListJobs(ctx, client.JobQuery{States: []model.JobState{model.JobRunning}, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page.Items {
			if j.Processor == "p0" {
				held = append(held, j)
			}
		}
		if len(held) == 0 {
			_ = procs[0].cmd.Process.Signal(syscall.SIGCONT)
		}
		return len(held) > 0
	}, "p0 to hold a job")
	procs[0].kill()
	t.Logf("killed p0 holding %d jobs", len(held))

	// Wait for every job to end.
	eventually.Value(t, 5*time.Minute, func() (int, error) {
		page, err := c.ListJobs(ctx, client.JobQuery{States: []model.JobState{model.JobQueued, model.JobRunning}, Limit: 1})
		if err != nil {
			return 0, err
		}
		return page.Total, nil
	}, func(n int) bool { return n == 0 }, "every job to end (last seen: how many were queued or running)")
	page, err := c.ListJobs(ctx, client.JobQuery{States: []model.JobState{model.JobSucceeded}, Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != total {
		t.Fatalf("%d of %d jobs succeeded", page.Total, total)
	}
	// The dead processor's jobs were run again by another, after expiry. A
	// completion p0 sent just before it froze may have landed; every other
	// job it held must have been re-run.
	var rerun []model.Job
	for _, h := range held {
		j, err := c.GetJob(ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if j.Processor == "p0" && j.Epoch == h.Epoch {
			continue // completed by p0 before the kill
		}
		rerun = append(rerun, h)
		if j.State != model.JobSucceeded || j.Processor == "p0" || j.Epoch <= h.Epoch || j.Attempt < 2 {
			t.Errorf("job %d held by p0 at epoch %d: now %s by %s epoch %d attempt %d", h.ID, h.Epoch, j.State, j.Processor, j.Epoch, j.Attempt)
		}
		if j.StartedAt.Before(h.LeaseUntil.Add(-time.Millisecond)) {
			t.Errorf("job %d re-run at %s, before p0's lease ended at %s", h.ID, j.StartedAt, h.LeaseUntil)
		}
	}
	if len(rerun) == 0 {
		t.Fatalf("none of the %d jobs p0 held was re-run", len(held))
	}
	t.Logf("%d jobs of p0 re-run after their lease expired", len(rerun))
	// A completion with p0's stale epoch is refused with 409.
	h := rerun[0]
	_, err = c.Complete(ctx, model.Completion{ID: h.ID, Epoch: h.Epoch, Result: []byte(`{}`)})
	if !isStatus(err, http.StatusConflict) {
		t.Fatalf("stale completion: got %v, want 409", err)
	}
	for _, p := range procs[1:] {
		if err := p.stop(30 * time.Second); err != nil {
			t.Errorf("%s: %v", p.name, err)
		}
	}
}

// TestQuotaHolds: a processor with --quota util.copy=2 never runs more than
// two copies at once under a queue of 50. Server-side claim and completion
// times bracket each handler run, so their overlap bounds the concurrency.
func TestQuotaHolds(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	dst := filepath.Join(dir, "dst")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	payload := strings.Repeat("media ", 200_000) // ~1.2 MB per file
	addr := freeAddr(t)
	url := "http://" + addr
	startDPE(t, "server", dir, "server", "--db", "sqlite:"+filepath.Join(dir, "dpe.db"), "--listen", addr)
	c := newClient(t, url)
	waitReady(t, c, 60*time.Second)
	startDPE(t, "processor", dir, "processor", "--server", url, "--quota", "util.copy=2", "--allow-path", dir)

	var specs []model.JobSpec
	for i := range 50 {
		f := filepath.Join(src, fmt.Sprintf("f%02d.wav", i))
		if err := os.WriteFile(f, []byte(payload), 0o644); err != nil {
			t.Fatal(err)
		}
		specs = append(specs, model.JobSpec{Type: "util.copy", Params: []byte(fmt.Sprintf(`{"from":%q,"to":%q}`, f, filepath.Join(dst, filepath.Base(f))))})
	}
	ctx := context.Background()
	if _, err := c.SubmitJobs(ctx, specs); err != nil {
		t.Fatal(err)
	}
	var jobs []model.Job
	done := 0
	eventually.True(t, 2*time.Minute, func() bool {
		page, err := c.ListJobs(ctx, client.JobQuery{Types: []string{"util.copy"}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		done = 0
		for _, j := range page.Items {
			if j.State.Final() {
				done++
			}
		}
		jobs = page.Items
		return done == 50
	}, "50 copies to end")
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, j := range jobs {
		if j.State != model.JobSucceeded {
			t.Fatalf("job %d %s: %s", j.ID, j.State, j.Error)
		}
		edges = append(edges, edge{*j.StartedAt, +1}, edge{*j.FinishedAt, -1})
	}
	sort.Slice(edges, func(i, k int) bool {
		if edges[i].at.Equal(edges[k].at) {
			return edges[i].delta < edges[k].delta // an end before a start at the same instant
		}
		return edges[i].at.Before(edges[k].at)
	})
	running, peak := 0, 0
	for _, e := range edges {
		running += e.delta
		peak = max(peak, running)
	}
	if peak > 2 {
		t.Fatalf("peak concurrency %d, quota 2", peak)
	}
	if peak < 2 {
		t.Logf("peak concurrency only %d (expected 2 with 50 queued)", peak)
	}
	got, err := os.ReadFile(filepath.Join(dst, "f49.wav"))
	if err != nil || string(got) != payload {
		t.Fatalf("copied file differs: %v", err)
	}
}
