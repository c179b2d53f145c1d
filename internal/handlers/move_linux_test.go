package handlers

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/paths"
)

// A real move between two file systems, when the machine has a tmpfs at
// /dev/shm apart from the temporary directory.
func TestMoveRealCrossDevice(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	shm, err := os.MkdirTemp("/dev/shm", "dpe-test-")
	if err != nil {
		t.Skipf("no /dev/shm: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	var a, b syscall.Stat_t
	if syscall.Stat(base, &a) != nil || syscall.Stat(shm, &b) != nil || a.Dev == b.Dev {
		t.Skip("/dev/shm is on the same file system as the temporary directory")
	}
	g, err := paths.NewGuard([]string{base, shm})
	if err != nil {
		t.Fatal(err)
	}
	h := Builtins(Config{Guard: g})[jobtype.Move]
	from, to := filepath.Join(base, "a"), filepath.Join(shm, "sub", "a")
	writeFile(t, from, "audio")
	res, err := h.Run(t.Context(), task(t, jobtype.Move, map[string]any{"from": from, "to": to}, nil))
	if err != nil || res.(moveResult).Method != "copy" {
		t.Fatalf("move = %+v, %v; want method copy", res, err)
	}
	if _, err := os.Stat(from); !errors.Is(err, os.ErrNotExist) || readFile(t, to) != "audio" {
		t.Errorf("after move: source %v, target %q", err, readFile(t, to))
	}
}
