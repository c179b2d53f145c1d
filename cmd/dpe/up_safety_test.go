package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
)

// TestUpDeniesDataDir is finding 8 of issue 13: dpe up allowed file jobs
// in its data directory, next to the core database. Its file folders stay
// allowed; the database is refused, by path and through a link.
func TestUpDeniesDataDir(t *testing.T) {
	work := t.TempDir()
	data := filepath.Join(work, "dpe-data")
	addr := freeAddr(t)
	up := startDPE(t, "dpe up", work, "up", "--data", data, "--listen", addr)
	up.waitLine("dpe is up", 60*time.Second)
	url := "http://" + addr

	if err := os.WriteFile(filepath.Join(data, "files", "ok.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(data, "dpe.db"), filepath.Join(work, "db-link")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		ok   bool
	}{
		{filepath.Join(data, "files", "ok.txt"), true},
		{filepath.Join(data, "dpe.db"), false},
		{filepath.Join(work, "db-link"), false},
	}
	for _, tc := range tests {
		out, errOut, code := runDPE(t, work, "job", "submit", "util.checksum", "--param", "path="+tc.path, "--max-attempts", "1", "--wait", "--server", url)
		switch {
		case tc.ok && code != 0:
			t.Errorf("checksum of %s: exit %d:\n%s\n%s", tc.path, code, out, errOut)
		case !tc.ok && (code == 0 || !strings.Contains(out+errOut, "file jobs may not go")):
			t.Errorf("checksum of %s: exit %d, want a refusal naming the rule:\n%s\n%s", tc.path, code, out, errOut)
		}
	}
	if err := up.stop(30 * time.Second); err != nil {
		t.Fatalf("dpe up did not stop: %v\n%s", err, up.output())
	}
}

// TestUpWorkflowLimits drives findings 2 and 3 of issue 13 through dpe
// up: a template starting itself is refused at import; an expression
// with 10^10 predicate steps fails its instance quickly with an error
// naming it, instead of holding the worker; and SIGTERM still stops
// dpe up.
func TestUpWorkflowLimits(t *testing.T) {
	work := t.TempDir()
	addr := freeAddr(t)
	up := startDPE(t, "dpe up", work, "up", "--data", filepath.Join(work, "dpe-data"), "--listen", addr)
	up.waitLine("dpe is up", 60*time.Second)
	url := "http://" + addr

	loop := filepath.Join(work, "loop.yaml")
	if err := os.WriteFile(loop, []byte("name: loop\nsteps:\n  - {id: again, workflow: loop}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runDPE(t, work, "template", "import", loop, "--server", url)
	if code == 0 || !strings.Contains(out+errOut, "starts itself") {
		t.Fatalf("import of a self-starting template: exit %d, want a refusal:\n%s\n%s", code, out, errOut)
	}

	const expr = "count(args.l, count(args.l, # == 1) > 0)"
	src := "name: quadratic\nargs:\n  l: {type: list}\nsteps:\n  - id: n\n    set: {n: \"${{ " + expr + " }}\"}\n"
	c := upClient(t, url, filepath.Join(work, "dpe-data"))
	ctx := context.Background()
	if _, err := c.ImportTemplate(ctx, []byte(src), "application/yaml"); err != nil {
		t.Fatal(err)
	}
	l := make([]string, 100_000)
	for i := range l {
		l[i] = fmt.Sprintf("f%d", i)
	}
	args, err := json.Marshal(map[string]any{"l": l})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := c.StartWorkflow(ctx, model.InstanceSpec{Template: "quadratic", Args: args})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var final *model.InstanceDetail
	eventually.True(t, 60*time.Second, func() bool {
		d, err := c.GetWorkflow(ctx, inst.ID)
		if err != nil {
			t.Fatal(err)
		}
		final = d
		return d.Instance.State.Final()
	}, "the quadratic instance to end")
	t.Logf("instance ended %s after %v: %s", final.Instance.State, time.Since(start).Round(time.Millisecond), final.Instance.Error)
	if final.Instance.State != model.InstanceFailed || !strings.Contains(final.Instance.Error, expr) || !strings.Contains(final.Instance.Error, "budget") {
		t.Errorf("instance %s: %q, want failed naming the expression and its budget", final.Instance.State, final.Instance.Error)
	}
	if err := up.stop(30 * time.Second); err != nil {
		t.Fatalf("dpe up did not stop on SIGTERM: %v\n%s", err, up.output())
	}
}
