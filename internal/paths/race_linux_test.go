package paths

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// swapLoop swaps dir with a symbolic link to target, and back, as fast as
// it can, until stop is closed: an attacker who may write in the root
// racing the guard's check of a path against the operation on it. The
// swaps are atomic (RENAME_EXCHANGE), so dir is always there, most of
// the time as the real directory: most checks pass, and the link comes
// now and then between a check and an operation.
func swapLoop(t *testing.T, dir, target string, started chan<- struct{}, stop <-chan struct{}) {
	t.Helper()
	link := dir + ".link"
	if err := os.Symlink(target, link); err != nil {
		t.Error(err)
		return
	}
	swap := func() error {
		return unix.Renameat2(unix.AT_FDCWD, dir, unix.AT_FDCWD, link, unix.RENAME_EXCHANGE)
	}
	for {
		select {
		case <-stop:
			return
		default:
		}
		if err := swap(); err != nil {
			t.Error(err)
			return
		}
		for range 3 {
			runtime.Gosched()
		}
		if err := swap(); err != nil {
			t.Error(err)
			return
		}
		if started != nil {
			close(started)
			started = nil
		}
		for range 50 {
			runtime.Gosched()
		}
	}
}

// raceTree is the tree of TestDenySwapRace:
//
//	base/             the allowed root (dpe up's working directory)
//	base/data/        denied (the data directory, the core database)
//	base/work/d/      swapped for a link to ../data now and then
type raceTree struct {
	base, data, work, dir string
	g                     *Guard
}

func newRaceTree(t *testing.T) *raceTree {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rt := &raceTree{base: base, data: filepath.Join(base, "data"), work: filepath.Join(base, "work")}
	rt.dir = filepath.Join(rt.work, "d")
	for _, d := range []string{rt.data, rt.dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rt.g = mustGuard(t, []string{base})
	if err := rt.g.Deny(rt.data); err != nil {
		t.Fatal(err)
	}
	return rt
}

// TestDenySwapRace is the mutating half of finding 4 of issue 13 with a
// denied directory under the root: each operation is given a path that
// Resolve accepts, in a directory that a concurrent loop swaps for a link
// to the denied data directory, thousands of times. os.Root alone follows
// the link (it stays in the root); the guard must not touch the data
// directory however the timing falls. Each case counts the operations
// that changed something in it.
func TestDenySwapRace(t *testing.T) {
	// least attempts, more (up to attempts) until one meets the
	// link, so that every operation is raced.
	const least, attempts = 400, 1500
	names := make([]string, attempts)
	for i := range names {
		names[i] = fmt.Sprintf("f%d", i)
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		prepare func(t *testing.T, rt *raceTree)
		op      func(rt *raceTree, i int) (string, func(p string) error)
		leaked  func(t *testing.T, rt *raceTree) int // what changed in data
	}{
		{
			name:    "Remove",
			prepare: func(t *testing.T, rt *raceTree) { mkfiles(t, names, rt.dir, rt.data) },
			op: func(rt *raceTree, i int) (string, func(string) error) {
				return filepath.Join(rt.dir, names[i]), rt.g.Remove
			},
			leaked: func(t *testing.T, rt *raceTree) int { return attempts - countEntries(t, rt.data) },
		},
		{
			name:    "Rename from",
			prepare: func(t *testing.T, rt *raceTree) { mkfiles(t, names, rt.dir, rt.data) },
			op: func(rt *raceTree, i int) (string, func(string) error) {
				return filepath.Join(rt.dir, names[i]), func(p string) error {
					return rt.g.Rename(p, filepath.Join(rt.work, "moved-"+names[i]))
				}
			},
			leaked: func(t *testing.T, rt *raceTree) int { return attempts - countEntries(t, rt.data) },
		},
		{
			name:    "Rename to",
			prepare: func(t *testing.T, rt *raceTree) { mkfiles(t, names, rt.work) },
			op: func(rt *raceTree, i int) (string, func(string) error) {
				return filepath.Join(rt.dir, names[i]), func(p string) error {
					return rt.g.Rename(filepath.Join(rt.work, names[i]), p)
				}
			},
			leaked: func(t *testing.T, rt *raceTree) int { return countEntries(t, rt.data) },
		},
		{
			name: "CreateTemp",
			op: func(rt *raceTree, i int) (string, func(string) error) {
				return rt.dir, func(p string) error {
					f, _, err := rt.g.CreateTemp(p, "t-*")
					if err == nil {
						f.Close()
					}
					return err
				}
			},
			leaked: func(t *testing.T, rt *raceTree) int { return countEntries(t, rt.data) },
		},
		{
			name: "MkdirAll",
			op: func(rt *raceTree, i int) (string, func(string) error) {
				return filepath.Join(rt.dir, names[i], "sub"), func(p string) error { return rt.g.MkdirAll(p, 0o755) }
			},
			leaked: func(t *testing.T, rt *raceTree) int { return countEntries(t, rt.data) },
		},
		{
			name: "Chtimes",
			prepare: func(t *testing.T, rt *raceTree) {
				mkfiles(t, names, rt.dir, rt.data)
				for _, n := range names {
					if err := os.Chtimes(filepath.Join(rt.data, n), old, old); err != nil {
						t.Fatal(err)
					}
				}
			},
			op: func(rt *raceTree, i int) (string, func(string) error) {
				return filepath.Join(rt.dir, names[i]), func(p string) error {
					return rt.g.Chtimes(p, time.Now(), time.Now())
				}
			},
			leaked: func(t *testing.T, rt *raceTree) int {
				t.Helper()
				n := 0
				for _, name := range names {
					fi, err := os.Stat(filepath.Join(rt.data, name))
					if err != nil {
						t.Fatal(err)
					}
					if !fi.ModTime().Equal(old) {
						n++
					}
				}
				return n
			},
		},
	}
	hits := 0 // operations that met the link
	t.Cleanup(func() {
		if hits == 0 && !t.Failed() {
			t.Error("no operation met the link: the race was not exercised")
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRaceTree(t)
			if tc.prepare != nil {
				tc.prepare(t, rt)
			}
			// Every path is checked while the tree is harmless, as a job's
			// params are when it starts; the swaps come after.
			ops := make([]func() error, attempts)
			for i := range ops {
				p, op := tc.op(rt, i)
				p, err := rt.g.Resolve(p)
				if err != nil {
					t.Fatal(err)
				}
				ops[i] = func() error { return op(p) }
			}
			started, stop := make(chan struct{}), make(chan struct{})
			var wg sync.WaitGroup
			// A relative link, as a user inside the root would plant it.
			wg.Go(func() { swapLoop(t, rt.dir, "../data", started, stop) })
			<-started
			ok, failed, blocked, tried := 0, 0, 0, 0
			for _, op := range ops {
				if tried >= least && blocked > 0 {
					break
				}
				tried++
				switch err := op(); {
				case err == nil:
					ok++
				case errors.Is(err, ErrOutsideRoots):
					blocked++ // the link was there: the guard saw it
				default:
					failed++
				}
			}
			close(stop)
			wg.Wait()
			leaked := tc.leaked(t, rt)
			t.Logf("%d attempts: %d done, %d refused by the guard, %d failed otherwise, %d touched the denied dir", tried, ok, blocked, failed, leaked)
			if leaked != 0 {
				t.Errorf("%d of %d operations changed the denied directory", leaked, tried)
			}
			if ok == 0 {
				t.Error("no operation succeeded: the race was not exercised")
			}
			hits += blocked + leaked
		})
	}
}

// countEntries returns the number of entries in dir.
func countEntries(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
