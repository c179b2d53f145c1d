package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/location"
	"github.com/dpe-engine/dpe/internal/model"
)

// tree returns the regular files under root as relative path → content.
func tree(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out[filepath.ToSlash(rel)] = readFile(t, path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// syncFixture fills the location: the master has three files; replica1
// lacks one, has one corrupted (same size, other bytes), one right, and
// two files of its own; replica2 is empty.
func syncFixture(t *testing.T) locBundle {
	t.Helper()
	b := setupLocations(t)
	writeFile(t, filepath.Join(b.master, "a.wav"), "AAAA")
	writeFile(t, filepath.Join(b.master, "sub", "b.wav"), "BBBBBB")
	writeFile(t, filepath.Join(b.master, "c.wav"), "CC")
	writeFile(t, filepath.Join(b.replica1, "a.wav"), "AAxA") // corrupted
	writeFile(t, filepath.Join(b.replica1, "c.wav"), "CC")
	writeFile(t, filepath.Join(b.replica1, "old.wav"), "gone from the master")
	writeFile(t, filepath.Join(b.replica1, "olddir", "x.wav"), "x")
	return b
}

// runSync runs util.sync and returns its report.
func (b locBundle) runSync(t *testing.T, params map[string]any) (*syncReport, error) {
	t.Helper()
	params["location"] = "archive"
	res, err := b.run(t, jobtype.Sync, params)
	rep, _ := res.(*syncReport)
	if rep == nil && err == nil {
		t.Fatalf("util.sync returned %T and no error", res)
	}
	return rep, err
}

// counts is the numbers of one replica report, for comparisons.
type counts struct{ copied, repaired, verified, deleted, extra, errors int64 }

func countsOf(r *replicaReport) counts {
	return counts{r.Copied, r.Repaired, r.Verified, r.Deleted, r.Extra, r.ErrorCount}
}

func changesOf(r *replicaReport) map[string]string {
	m := map[string]string{}
	for _, c := range r.Changes {
		m[c.Path] = c.Action
	}
	return m
}

func TestSyncRepairsReplicas(t *testing.T) {
	b := syncFixture(t)
	want := tree(t, b.master)
	var pr progress
	res, err := b.h[jobtype.Sync].Run(context.Background(), task(t, jobtype.Sync, map[string]any{"location": "archive"}, &pr))
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	rep := res.(*syncReport)
	if rep.Location != "archive" || rep.Master != b.master || rep.Algorithm != "sha256" || rep.Files != 3 || rep.Bytes != 12 || len(rep.Replicas) != 2 {
		t.Fatalf("report = %+v", rep)
	}
	r1, r2 := rep.Replicas[0], rep.Replicas[1]
	if got := countsOf(r1); got != (counts{copied: 1, repaired: 1, verified: 1, extra: 2}) {
		t.Errorf("replica1 counts = %+v, errors %v", got, r1.Errors)
	}
	wantChanges := map[string]string{"sub/b.wav": "copied", "a.wav": "repaired", "old.wav": "extra", "olddir/x.wav": "extra"}
	if got := changesOf(r1); !maps.Equal(got, wantChanges) {
		t.Errorf("replica1 changes = %v, want %v", got, wantChanges)
	}
	if r1.BytesCopied != 10 {
		t.Errorf("replica1 bytes copied = %d, want 10", r1.BytesCopied)
	}
	if got := countsOf(r2); got != (counts{copied: 3}) {
		t.Errorf("replica2 counts = %+v, errors %v", got, r2.Errors)
	}
	if got := tree(t, b.replica2); !maps.Equal(got, want) {
		t.Errorf("replica2 = %v, want %v", got, want)
	}
	// delete: false keeps the replica's own files.
	want1 := maps.Clone(want)
	want1["old.wav"], want1["olddir/x.wav"] = "gone from the master", "x"
	if got := tree(t, b.replica1); !maps.Equal(got, want1) {
		t.Errorf("replica1 = %v, want %v", got, want1)
	}
	if p := pr.reports(); len(p) == 0 || p[len(p)-1] != 100 {
		t.Errorf("progress = %v, want it to end at 100", p)
	}

	// Again: everything verified, nothing copied.
	rep, err = b.runSync(t, map[string]any{})
	if err != nil || countsOf(rep.Replicas[0]) != (counts{verified: 3, extra: 2}) || countsOf(rep.Replicas[1]) != (counts{verified: 3}) {
		t.Errorf("second sync = %+v %+v, %v", rep.Replicas[0], rep.Replicas[1], err)
	}

	// delete: true removes them, and the directory they leave empty.
	rep, err = b.runSync(t, map[string]any{"delete": true})
	if err != nil || countsOf(rep.Replicas[0]) != (counts{verified: 3, deleted: 2}) {
		t.Errorf("sync with delete = %+v, %v", rep.Replicas[0], err)
	}
	if got := tree(t, b.replica1); !maps.Equal(got, want) {
		t.Errorf("replica1 after delete = %v, want %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(b.replica1, "olddir")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("extra directory olddir still there: %v", err)
	}

	// The result is JSON with the documented fields.
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"location"`, `"master"`, `"files"`, `"bytes"`, `"replicas"`, `"root"`, `"copied"`, `"repaired"`, `"deleted"`, `"extra"`, `"verified"`} {
		if !strings.Contains(string(raw), key) {
			t.Errorf("report JSON lacks %s: %s", key, raw)
		}
	}
}

func TestSyncDryRunChangesNothing(t *testing.T) {
	b := syncFixture(t)
	before := map[string]map[string]string{}
	for _, d := range []string{b.master, b.replica1, b.replica2} {
		before[d] = tree(t, d)
	}
	rep, err := b.runSync(t, map[string]any{"dry_run": true, "delete": true})
	if err != nil || !rep.DryRun {
		t.Fatalf("dry run = %+v, %v", rep, err)
	}
	if got := countsOf(rep.Replicas[0]); got != (counts{copied: 1, repaired: 1, verified: 1, deleted: 2}) {
		t.Errorf("replica1 dry-run counts = %+v", got)
	}
	if got := countsOf(rep.Replicas[1]); got != (counts{copied: 3}) {
		t.Errorf("replica2 dry-run counts = %+v", got)
	}
	for d, want := range before {
		if got := tree(t, d); !maps.Equal(got, want) {
			t.Errorf("dry run changed %s: %v, was %v", d, got, want)
		}
	}
	if got := listDir(t, b.replica2); len(got) != 0 {
		t.Errorf("dry run created %v in replica2", got)
	}
}

// md5 compares and verifies as well.
func TestSyncMD5(t *testing.T) {
	b := syncFixture(t)
	rep, err := b.runSync(t, map[string]any{"algorithm": "md5"})
	if err != nil || rep.Algorithm != "md5" || countsOf(rep.Replicas[0]) != (counts{copied: 1, repaired: 1, verified: 1, extra: 2}) {
		t.Errorf("md5 sync = %+v, %v", rep, err)
	}
	if got := readFile(t, filepath.Join(b.replica1, "a.wav")); got != "AAAA" {
		t.Errorf("corrupted file holds %q after the md5 sync", got)
	}
}

// Temporary files of copies under way are neither mirrored nor deleted.
func TestSyncIgnoresTemporaryFiles(t *testing.T) {
	b := setupLocations(t)
	writeFile(t, filepath.Join(b.master, "a.wav"), "A")
	writeFile(t, filepath.Join(b.master, ".b.wav.dpe-tmp-123"), "half")
	writeFile(t, filepath.Join(b.replica1, ".c.wav.dpe-tmp-456"), "left over")
	rep, err := b.runSync(t, map[string]any{"delete": true})
	if err != nil || rep.Files != 1 || countsOf(rep.Replicas[0]) != (counts{copied: 1}) {
		t.Fatalf("sync = %+v %+v, %v", rep, rep.Replicas[0], err)
	}
	if got := listDir(t, b.replica1); !slices.Equal(got, []string{".c.wav.dpe-tmp-456", "a.wav"}) {
		t.Errorf("replica1 = %v", got)
	}
}

// A master with no files at all is taken for an unmounted share: nothing
// is deleted on the replicas.
func TestSyncEmptyMasterDeletesNothing(t *testing.T) {
	b := setupLocations(t)
	writeFile(t, filepath.Join(b.replica1, "keep.wav"), "k")
	rep, err := b.runSync(t, map[string]any{"delete": true})
	if err == nil || IsPermanent(err) || rep.ErrorCount != 1 || countsOf(rep.Replicas[0]) != (counts{extra: 1}) {
		t.Errorf("sync of an empty master = %+v, %v", rep, err)
	}
	if got := listDir(t, b.replica1); !slices.Equal(got, []string{"keep.wav"}) {
		t.Errorf("replica1 = %v", got)
	}
}

// A replica that is down is reported and the others are still synced; the
// attempt fails (retryably) so the sync runs again.
func TestSyncReplicaDown(t *testing.T) {
	b := syncFixture(t)
	if err := os.Rename(b.replica2, b.replica2+".gone"); err != nil {
		t.Fatal(err)
	}
	rep, err := b.runSync(t, map[string]any{})
	if err == nil || IsPermanent(err) {
		t.Fatalf("sync with a replica down: err = %v, want a retryable error", err)
	}
	if rep == nil || countsOf(rep.Replicas[0]) != (counts{copied: 1, repaired: 1, verified: 1, extra: 2}) {
		t.Fatalf("replica1 = %+v", rep)
	}
	if r2 := rep.Replicas[1]; r2.ErrorCount != 1 || !strings.Contains(r2.Errors[0], "unhealthy") {
		t.Errorf("replica2 = %+v", r2)
	}
}

// A master that is down fails the attempt, retryably, and touches nothing.
func TestSyncMasterDown(t *testing.T) {
	b := syncFixture(t)
	if err := os.Rename(b.master, b.master+".gone"); err != nil {
		t.Fatal(err)
	}
	before := tree(t, b.replica1)
	_, err := b.runSync(t, map[string]any{"delete": true})
	if err == nil || IsPermanent(err) || !strings.Contains(err.Error(), "master") {
		t.Errorf("sync with the master down = %v, want a retryable error about the master", err)
	}
	if got := tree(t, b.replica1); !maps.Equal(got, before) {
		t.Errorf("replica1 changed: %v", got)
	}
}

func TestSyncRefused(t *testing.T) {
	b := setupLocations(t)
	tests := []struct {
		name   string
		h      Handler
		params string
		want   error
	}{
		{"unknown location", b.h[jobtype.Sync], `{"location":"nope"}`, location.ErrUnknown},
		{"no location", b.h[jobtype.Sync], `{}`, model.ErrInvalid},
		{"bad algorithm", b.h[jobtype.Sync], `{"location":"archive","algorithm":"crc32"}`, model.ErrInvalid},
		{"no locations configured", Builtins(Config{})[jobtype.Sync], `{"location":"archive"}`, errNoLocations},
	}
	for _, tt := range tests {
		_, err := tt.h.Run(context.Background(), task(t, jobtype.Sync, tt.params, nil))
		if !IsPermanent(err) || !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want a permanent %v", tt.name, err, tt.want)
		}
	}
}

// Cancelling the job stops the sync between files and leaves no
// temporary file behind.
func TestSyncCancel(t *testing.T) {
	b := setupLocations(t)
	for i := range 40 {
		writeFile(t, filepath.Join(b.master, fmt.Sprintf("f%02d.wav", i)), strings.Repeat("x", 1000))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tk := task(t, jobtype.Sync, map[string]any{"location": "archive"}, nil)
	tk.Progress = func(int, string) { cancel() } // at the first report
	res, err := b.h[jobtype.Sync].Run(ctx, tk)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled sync: err = %v, want context.Canceled", err)
	}
	rep := res.(*syncReport)
	if n := rep.Replicas[0].Copied; n == 0 || n >= 40 {
		t.Errorf("cancelled sync copied %d files, want some but not all", n)
	}
	for _, d := range []string{b.replica1, b.replica2} {
		for _, name := range listDir(t, d) {
			if isTempName(name) {
				t.Errorf("temporary file %s left in %s", name, d)
			}
		}
	}
}
