package handlers

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dpe-engine/dpe/internal/jobtype"
)

func TestMove(t *testing.T) {
	b := setup(t)
	from := filepath.Join(b.root, "in", "a.wav")
	to := filepath.Join(b.root, "done", "a.wav")
	writeFile(t, from, "audio")
	params := map[string]any{"from": from, "to": to}

	res, err := b.run(t, jobtype.Move, params)
	if want := (moveResult{From: from, To: to, Method: "rename", Size: 5}); err != nil || res != want {
		t.Fatalf("move = %+v, %v; want %+v", res, err, want)
	}
	if _, err := os.Stat(from); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("source still there: %v", err)
	}
	if got := readFile(t, to); got != "audio" {
		t.Errorf("target holds %q", got)
	}
	// Idempotent: already moved.
	res, err = b.run(t, jobtype.Move, params)
	if want := (moveResult{From: from, To: to, Method: "none"}); err != nil || res != want {
		t.Fatalf("second move = %+v, %v; want %+v", res, err, want)
	}
	// Neither there: nothing a retry could fix.
	if _, err := b.run(t, jobtype.Move, map[string]any{"from": from, "to": from + ".x"}); !IsPermanent(err) {
		t.Errorf("move of nothing: err = %v, want permanent", err)
	}
}

func TestMoveExistingTarget(t *testing.T) {
	b := setup(t)
	from, to := filepath.Join(b.root, "a"), filepath.Join(b.root, "b")

	// A copy that died before deleting its source: same content, so the
	// source goes.
	writeFile(t, from, "same")
	writeFile(t, to, "same")
	res, err := b.run(t, jobtype.Move, map[string]any{"from": from, "to": to})
	if err != nil || res.(moveResult).Method != "none" {
		t.Fatalf("move onto a copy = %+v, %v", res, err)
	}
	if _, err := os.Stat(from); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("source still there: %v", err)
	}

	// Different content: refused unless overwrite.
	writeFile(t, from, "new")
	if _, err := b.run(t, jobtype.Move, map[string]any{"from": from, "to": to}); !IsPermanent(err) || !errors.Is(err, errTargetDiffers) {
		t.Fatalf("move onto other content: err = %v", err)
	}
	if got := readFile(t, to); got != "same" {
		t.Errorf("target changed to %q", got)
	}
	if _, err := b.run(t, jobtype.Move, map[string]any{"from": from, "to": to, "overwrite": true}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, to); got != "new" {
		t.Errorf("target holds %q after overwrite", got)
	}

	// A link to the source as target is not "the same file": the source
	// must survive.
	writeFile(t, from, "precious")
	link := filepath.Join(b.root, "link")
	if err := os.Symlink(from, link); err != nil {
		t.Fatal(err)
	}
	if _, err := b.run(t, jobtype.Move, map[string]any{"from": from, "to": link}); !IsPermanent(err) {
		t.Fatalf("move onto a link to itself: err = %v, want permanent", err)
	}
	if got := readFile(t, from); got != "precious" {
		t.Errorf("source holds %q", got)
	}
}

// Across file systems, move copies, verifies, then deletes the source.
func TestMoveAcrossFileSystems(t *testing.T) {
	b := setup(t)
	h := b.h[jobtype.Move].(*moveHandler)
	h.rename = func(from, to string) error {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EXDEV}
	}
	from := filepath.Join(b.root, "a")
	to := filepath.Join(b.root, "other-fs", "a")
	writeFile(t, from, "audio")
	res, err := b.run(t, jobtype.Move, map[string]any{"from": from, "to": to})
	want := moveResult{From: from, To: to, Method: "copy", Size: 5, SHA256: sha256Hex("audio")}
	if err != nil || res != want {
		t.Fatalf("move = %+v, %v; want %+v", res, err, want)
	}
	if _, err := os.Stat(from); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("source still there: %v", err)
	}
	if got := listDir(t, filepath.Dir(to)); len(got) != 1 || readFile(t, to) != "audio" {
		t.Errorf("target dir holds %v", got)
	}
	// A directory cannot be copied across.
	dir := filepath.Join(b.root, "dir")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := b.run(t, jobtype.Move, map[string]any{"from": dir, "to": dir + "2"}); !IsPermanent(err) {
		t.Errorf("directory across file systems: err = %v, want permanent", err)
	}
}
