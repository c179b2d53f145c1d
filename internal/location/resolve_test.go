package location

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func mustResolve(t *testing.T, resolve func(string, string) (string, error), rel, want string) {
	t.Helper()
	got, err := resolve("archive", rel)
	if err != nil || got != want {
		t.Fatalf("resolve(archive, %q) = %q, %v; want %q", rel, got, err, want)
	}
}

func TestResolvePicksMaster(t *testing.T) {
	f := setup(t, Options{})
	writeFile(t, filepath.Join(f.master, "both.wav"), "m")
	writeFile(t, filepath.Join(f.replica, "both.wav"), "r")
	writeFile(t, filepath.Join(f.replica, "only-replica.wav"), "r")

	mustResolve(t, f.set.Resolve, "both.wav", filepath.Join(f.master, "both.wav"))
	mustResolve(t, f.set.Resolve, "new/file.wav", filepath.Join(f.master, "new", "file.wav"))
	mustResolve(t, f.set.Resolve, "", f.master)
	mustResolve(t, f.set.Resolve, "./a//b", filepath.Join(f.master, "a", "b"))
	// A file only the replica has (written while the master was away) is
	// read from there; a write goes to the master all the same.
	mustResolve(t, f.set.Resolve, "only-replica.wav", filepath.Join(f.replica, "only-replica.wav"))
	mustResolve(t, f.set.ResolveWrite, "only-replica.wav", filepath.Join(f.master, "only-replica.wav"))

	if _, err := f.set.Resolve("archive", "a/../../x"); err == nil {
		t.Error("\"..\" accepted")
	}
	if _, err := f.set.Resolve("nope", "x"); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown location: %v", err)
	}
}

// The master disappears mid-run (root cannot chmod it unreadable, so it is
// renamed away): the cached probe keeps it until the TTL ends, then reads
// and writes move to the replica; when it comes back, they return.
func TestFailoverAfterTTL(t *testing.T) {
	f := setup(t, Options{TTL: 2 * time.Second})
	writeFile(t, filepath.Join(f.master, "x.wav"), "m")
	writeFile(t, filepath.Join(f.replica, "x.wav"), "r")
	mustResolve(t, f.set.Resolve, "new.wav", filepath.Join(f.master, "new.wav"))

	gone := f.master + ".gone"
	if err := os.Rename(f.master, gone); err != nil {
		t.Fatal(err)
	}
	// Within the TTL the master is still taken as healthy for new files;
	// an existing file is found on the replica at once.
	f.clock.Advance(time.Second)
	mustResolve(t, f.set.Resolve, "new.wav", filepath.Join(f.master, "new.wav"))
	mustResolve(t, f.set.Resolve, "x.wav", filepath.Join(f.replica, "x.wav"))

	f.clock.Advance(time.Second)
	mustResolve(t, f.set.Resolve, "new.wav", filepath.Join(f.replica, "new.wav"))
	mustResolve(t, f.set.ResolveWrite, "x.wav", filepath.Join(f.replica, "x.wav"))

	if err := os.Rename(gone, f.master); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Second)
	mustResolve(t, f.set.Resolve, "x.wav", filepath.Join(f.master, "x.wav"))
	mustResolve(t, f.set.ResolveWrite, "new.wav", filepath.Join(f.master, "new.wav"))

	// Every root gone: a retryable ErrNoHealthyRoot naming both.
	for _, d := range []string{f.master, f.replica} {
		if err := os.RemoveAll(d); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Advance(2 * time.Second)
	_, err := f.set.Resolve("archive", "x.wav")
	if !errors.Is(err, ErrNoHealthyRoot) {
		t.Fatalf("all roots gone: %v, want ErrNoHealthyRoot", err)
	}
	if _, err := f.set.ResolveWrite("archive", "x.wav"); !errors.Is(err, ErrNoHealthyRoot) {
		t.Fatalf("all roots gone, write: %v, want ErrNoHealthyRoot", err)
	}
}

// A read-only master (injected probe) still serves reads; writes go to the
// replica.
func TestReadOnlyMaster(t *testing.T) {
	var f fixture
	readOnly := errors.New("read-only file system")
	f = setup(t, Options{Probe: func(root string) (error, error) {
		if root == f.master {
			return nil, readOnly
		}
		return ProbeDir(root)
	}})
	writeFile(t, filepath.Join(f.master, "x.wav"), "m")
	mustResolve(t, f.set.Resolve, "x.wav", filepath.Join(f.master, "x.wav"))
	mustResolve(t, f.set.Resolve, "new.wav", filepath.Join(f.replica, "new.wav"))
	mustResolve(t, f.set.ResolveWrite, "x.wav", filepath.Join(f.replica, "x.wav"))
}

// A probe that hangs (a dead NFS server) counts as a failure after the
// timeout, later calls do not wait for it again, and its late result is
// used once it arrives.
func TestHungProbe(t *testing.T) {
	var f fixture
	release := make(chan struct{})
	var hanging atomic.Bool
	hanging.Store(true)
	f = setup(t, Options{Timeout: 250 * time.Millisecond, Probe: func(root string) (error, error) {
		if root == f.master && hanging.Load() {
			<-release
		}
		return ProbeDir(root)
	}})
	mustResolve(t, f.set.Resolve, "new.wav", filepath.Join(f.replica, "new.wav"))
	f.clock.Advance(time.Hour)
	start := time.Now()
	mustResolve(t, f.set.ResolveWrite, "new.wav", filepath.Join(f.replica, "new.wav"))
	if d := time.Since(start); d > time.Second {
		t.Errorf("second resolve waited %s for the hung probe", d)
	}
	h, err := f.set.CheckLocation(context.Background(), "archive")
	if err != nil || h[0].Healthy || h[0].Err == nil || !h[1].Healthy {
		t.Errorf("CheckLocation while hung = %+v, %v", h, err)
	}

	// The hung probe ends and stores its (healthy) result.
	r := f.set.locs["archive"].roots[0]
	r.mu.Lock()
	done := r.pending
	r.mu.Unlock()
	hanging.Store(false)
	close(release)
	<-done
	if h, _ := f.set.CheckLocation(context.Background(), "archive"); !h[0].Healthy {
		t.Fatalf("master after the probe returned = %+v", h[0])
	}
	mustResolve(t, f.set.Resolve, "new.wav", filepath.Join(f.master, "new.wav"))
}

func TestCheck(t *testing.T) {
	f := setup(t, Options{})
	if err := os.Remove(f.replica); err != nil {
		t.Fatal(err)
	}
	got := f.set.Check(context.Background())
	if len(got) != 2 {
		t.Fatalf("Check = %+v, want 2 roots", got)
	}
	m, r := got[0], got[1]
	if m.Location != "archive" || m.Root != f.master || !m.Master() || m.Role() != "master" ||
		!m.Healthy || !m.Writable || m.Err != nil {
		t.Errorf("master = %+v", m)
	}
	if r.Root != f.replica || r.Index != 1 || r.Role() != "replica" || r.Healthy || r.Writable ||
		!errors.Is(r.Err, os.ErrNotExist) {
		t.Errorf("replica = %+v", r)
	}
	// A file where a root should be is no directory.
	writeFile(t, f.replica, "not a dir")
	if got := f.set.Check(context.Background()); got[1].Healthy || got[1].Err == nil {
		t.Errorf("file as root = %+v", got[1])
	}
	if _, err := f.set.CheckLocation(context.Background(), "nope"); !errors.Is(err, ErrUnknown) {
		t.Errorf("CheckLocation(nope) = %v", err)
	}
}
