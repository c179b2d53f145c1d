package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/location"
	"github.com/dpe-engine/dpe/internal/paths"
)

// locationsConfig writes a config whose location "archive" has a master
// and a missing replica, and whose location "lost" has no root at all.
func locationsConfig(t *testing.T) (cfg, master, replica string) {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	master, replica = filepath.Join(base, "master"), filepath.Join(base, "replica")
	if err := os.Mkdir(master, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(base, "dpe.yaml")
	doc := "locations:\n  archive: [" + master + ", " + replica + "]\n  lost: [" + filepath.Join(base, "nowhere") + "]\n"
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, master, replica
}

func runCLI(t *testing.T, fn func(context.Context, *env, []string) error, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	err := fn(context.Background(), e, args)
	return out.String(), err
}

func TestLocationsCheck(t *testing.T) {
	cfg, master, replica := locationsConfig(t)
	out, err := runCLI(t, runLocations, "check", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "lost") || strings.Contains(err.Error(), "archive") {
		t.Errorf("check = %v, want a failure naming lost only", err)
	}
	var ue usageError
	if errors.As(err, &ue) {
		t.Errorf("a down location is a usage error (exit 2), want exit 1: %v", err)
	}
	rows := map[string][]string{} // root → its fields
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		rows[f[1]] = f
	}
	if h := rows["ROOT"]; strings.Join(h, " ") != "LOCATION ROOT ROLE HEALTH LATENCY ERROR" {
		t.Errorf("header = %q", h)
	}
	if r := rows[master]; len(r) != 6 || r[0] != "archive" || r[2] != "master" || r[3] != "ok" || r[5] != "-" {
		t.Errorf("master row = %q", r)
	}
	if r := rows[replica]; len(r) < 6 || r[2] != "replica" || r[3] != "down" || !strings.Contains(strings.Join(r[5:], " "), "no such file") {
		t.Errorf("replica row = %q", r)
	}
	if len(rows) != 4 {
		t.Errorf("table:\n%s", out)
	}

	out, err = runCLI(t, runLocations, "check", "--config", cfg, "-o", "json")
	if err == nil {
		t.Error("json check of a down location succeeded")
	}
	var got checkJSON
	if jerr := json.Unmarshal([]byte(out), &got); jerr != nil {
		t.Fatalf("json output: %v\n%s", jerr, out)
	}
	if got.OK || len(got.Down) != 1 || got.Down[0] != "lost" || len(got.Roots) != 3 {
		t.Fatalf("json = %+v", got)
	}
	if r := got.Roots[0]; r.Root != master || r.Role != "master" || r.Health != "ok" || !r.Healthy || !r.Writable {
		t.Errorf("master = %+v", r)
	}
	if r := got.Roots[1]; r.Root != replica || r.Role != "replica" || r.Health != "down" || r.Error == "" {
		t.Errorf("replica = %+v", r)
	}
}

func TestLocationsCheckHealthy(t *testing.T) {
	cfg, master, _ := locationsConfig(t)
	doc := "locations:\n  archive: [" + master + "]\n"
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, runLocations, "check", "--config", cfg); err != nil || !strings.Contains(out, master) {
		t.Errorf("check = %v\n%s", err, out)
	}
}

func TestLocationsUsage(t *testing.T) {
	cfg, _, _ := locationsConfig(t)
	empty := filepath.Join(filepath.Dir(cfg), "empty.yaml")
	if err := os.WriteFile(empty, []byte("processor: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(filepath.Dir(cfg), "bad.yaml")
	if err := os.WriteFile(bad, []byte("locations:\n  Archive: [/srv/a]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{}, {"list"}, {"check"}, {"check", "--config", cfg, "extra"},
		{"check", "--config", empty}, {"check", "--config", bad},
		{"check", "--config", filepath.Join(filepath.Dir(cfg), "missing.yaml")},
	} {
		_, err := runCLI(t, runLocations, args...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("locations %q = %v, want a usage error", args, err)
		}
	}
}

// The processor's guard allows the location roots that exist and resolves
// loc: paths through the set.
func TestLocationGuard(t *testing.T) {
	_, master, replica := locationsConfig(t)
	set, err := location.New(map[string][]string{"archive": {master, replica}}, location.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	g, err := locationGuard(nil, set, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if roots := g.Roots(); len(roots) != 1 || roots[0] != master {
		t.Errorf("roots = %v, want only the master (the replica is missing)", roots)
	}
	if !strings.Contains(logs.String(), replica) {
		t.Errorf("no warning about the missing replica: %s", logs.String())
	}
	if got, err := g.Resolve("loc:archive/a.wav"); err != nil || got != filepath.Join(master, "a.wav") {
		t.Errorf("Resolve(loc:archive/a.wav) = %q, %v", got, err)
	}
	g, err = locationGuard(nil, nil, slog.New(slog.DiscardHandler))
	if err != nil || !g.Unconfined() {
		t.Fatalf("guard without locations = %v, %v; want unconfined", g, err)
	}
	if _, err := g.Resolve("loc:archive/a.wav"); !errors.Is(err, paths.ErrNoLocations) {
		t.Errorf("loc: path without locations = %v, want ErrNoLocations", err)
	}
}

// Bad worker flags are usage errors naming the flag, before anything runs.
func TestWorkerFlagsUsage(t *testing.T) {
	for _, tc := range []struct {
		run  func(context.Context, *env, []string) error
		args []string
		want string
	}{
		{runWorker, []string{"--server", "http://127.0.0.1:1", "--batch", "0"}, "--batch 0"},
		{runWorker, []string{"--server", "http://127.0.0.1:1", "--batch", "501"}, "--batch 501"},
		{runWorker, []string{"--server", "http://127.0.0.1:1", "--pipeline", "0"}, "--pipeline 0"},
	} {
		_, err := runCLI(t, tc.run, tc.args...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q = %v, want a usage error naming %s", tc.args, err, tc.want)
		}
	}
}
