package handlers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/location"
	"github.com/dpe-engine/dpe/internal/paths"
)

// locBundle is a handler set with a location "archive" of a master and two
// replicas, an allowed root "in" for sources, and a fake clock driving the
// location's health cache.
type locBundle struct {
	in, master, replica1, replica2 string
	clock                          *clock.Fake
	set                            *location.Set
	h                              map[string]Handler
}

func setupLocations(t *testing.T) locBundle {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := locBundle{
		in: filepath.Join(base, "in"), master: filepath.Join(base, "master"),
		replica1: filepath.Join(base, "replica1"), replica2: filepath.Join(base, "replica2"),
		clock: clock.NewFake(time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)),
	}
	for _, d := range []string{b.in, b.master, b.replica1, b.replica2} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b.set, err = location.New(map[string][]string{"archive": {b.master, b.replica1, b.replica2}},
		location.Options{Clock: b.clock})
	if err != nil {
		t.Fatal(err)
	}
	// What the processor does: the location roots are allowed roots, and
	// loc: paths are read through the set.
	g, err := paths.NewGuard(append([]string{b.in}, b.set.AllRoots()...))
	if err != nil {
		t.Fatal(err)
	}
	g.Locations = b.set.Resolve
	b.h = Builtins(Config{Guard: g, Locations: b.set})
	return b
}

func (b locBundle) run(t *testing.T, typ string, params any) (any, error) {
	t.Helper()
	return b.h[typ].Run(context.Background(), task(t, typ, params, nil))
}

// Copy targets named loc:... go to the master, reads find the file where
// it is, and a master that goes away is left at the next probe.
func TestCopyThroughLocation(t *testing.T) {
	b := setupLocations(t)
	src := filepath.Join(b.in, "x.wav")
	writeFile(t, src, "audio")

	res, err := b.run(t, jobtype.Copy, map[string]any{"from": src, "to": "loc:archive/day/x.wav"})
	want := filepath.Join(b.master, "day", "x.wav")
	if err != nil || res.(copyResult).To != want {
		t.Fatalf("copy to loc:archive/day/x.wav = %+v, %v; want it at %s", res, err, want)
	}
	if got := readFile(t, want); got != "audio" {
		t.Errorf("master holds %q", got)
	}

	// A file only a replica has is read from there, but a copy to that
	// name still writes the master.
	writeFile(t, filepath.Join(b.replica1, "old.wav"), "older")
	res, err = b.run(t, jobtype.Checksum, map[string]any{"path": "loc:archive/old.wav"})
	if err != nil || res.(checksumResult).Path != filepath.Join(b.replica1, "old.wav") {
		t.Errorf("checksum loc:archive/old.wav = %+v, %v; want the replica's file", res, err)
	}
	res, err = b.run(t, jobtype.Copy, map[string]any{"from": src, "to": "loc:archive/old.wav"})
	if err != nil || res.(copyResult).To != filepath.Join(b.master, "old.wav") {
		t.Errorf("copy over a replica-only file = %+v, %v; want the master", res, err)
	}
	res, err = b.run(t, jobtype.Mkdir, map[string]any{"path": "loc:archive/new/dir"})
	if err != nil || res.(mkdirResult).Path != filepath.Join(b.master, "new", "dir") {
		t.Errorf("mkdir loc:archive/new/dir = %+v, %v; want it on the master", res, err)
	}

	// The master goes away: after the probe TTL, writes go to replica1.
	if err := os.Rename(b.master, b.master+".gone"); err != nil {
		t.Fatal(err)
	}
	b.clock.Advance(location.DefaultTTL)
	res, err = b.run(t, jobtype.Copy, map[string]any{"from": src, "to": "loc:archive/y.wav"})
	if err != nil || res.(copyResult).To != filepath.Join(b.replica1, "y.wav") {
		t.Errorf("copy with the master down = %+v, %v; want replica1", res, err)
	}

	// Every root down is an outage: retried, not failed for good.
	for _, d := range []string{b.replica1, b.replica2} {
		if err := os.Rename(d, d+".gone"); err != nil {
			t.Fatal(err)
		}
	}
	b.clock.Advance(location.DefaultTTL)
	jobs := []struct {
		typ    string
		params map[string]any
	}{
		{jobtype.Copy, map[string]any{"from": src, "to": "loc:archive/z.wav"}},
		{jobtype.Checksum, map[string]any{"path": "loc:archive/day/x.wav"}},
	}
	for _, j := range jobs {
		_, err = b.run(t, j.typ, j.params)
		if !errors.Is(err, location.ErrNoHealthyRoot) || IsPermanent(err) {
			t.Errorf("%s with every root down = %v; want a retryable ErrNoHealthyRoot", j.typ, err)
		}
	}
}
