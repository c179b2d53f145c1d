package location

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/paths"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture is a location "archive" with a master and a replica in real
// temporary directories, and a fake clock driving the probe cache.
type fixture struct {
	master, replica string
	clock           *clock.Fake
	set             *Set
}

func setup(t *testing.T, opts Options) fixture {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{master: filepath.Join(base, "master"), replica: filepath.Join(base, "replica"),
		clock: clock.NewFake(time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC))}
	for _, d := range []string{f.master, f.replica} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts.Clock = f.clock
	f.set, err = New(map[string][]string{"archive": {f.master, f.replica}}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  map[string][]string
	}{
		{"bad name", map[string][]string{"Archive": {"/a"}}},
		{"slash in name", map[string][]string{"a/b": {"/a"}}},
		{"empty name", map[string][]string{"": {"/a"}}},
		{"no roots", map[string][]string{"a": nil}},
		{"relative root", map[string][]string{"a": {"/m", "r"}}},
		{"same root twice", map[string][]string{"a": {"/m", "/m/"}}},
		{"replica inside master", map[string][]string{"a": {"/m", "/m/replica"}}},
		{"master inside replica", map[string][]string{"a": {"/r/m", "/r"}}},
	}
	for _, tt := range tests {
		if _, err := New(tt.cfg, Options{}); !errors.Is(err, model.ErrInvalid) {
			t.Errorf("%s: New = %v, want an invalid-input error", tt.name, err)
		}
	}
	s, err := New(map[string][]string{
		"par.files_1-x": {"/srv/par/", "/mnt/moosefs/par"},
		"archive":       {"/srv/archive", "/srv/archive2"}, // a prefix, not a parent
		"shared":        {"/srv/par"},                      // roots may be shared across locations
	}, Options{})
	if err != nil {
		t.Fatalf("New(valid) = %v", err)
	}
	if got := s.Names(); !slices.Equal(got, []string{"archive", "par.files_1-x", "shared"}) {
		t.Errorf("Names = %v", got)
	}
	if got, _ := s.Roots("par.files_1-x"); !slices.Equal(got, []string{"/srv/par", "/mnt/moosefs/par"}) {
		t.Errorf("Roots = %v, want cleaned, master first", got)
	}
	want := []string{"/srv/archive", "/srv/archive2", "/srv/par", "/mnt/moosefs/par"}
	if got := s.AllRoots(); !slices.Equal(got, want) {
		t.Errorf("AllRoots = %v, want %v", got, want)
	}
	if _, err := s.Roots("nope"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Roots(nope) = %v, want ErrUnknown", err)
	}
	var nilSet *Set
	if _, err := nilSet.Resolve("archive", "x"); !errors.Is(err, ErrUnknown) {
		t.Errorf("nil Set Resolve = %v, want ErrUnknown", err)
	}
}

func TestSplitPath(t *testing.T) {
	tests := []struct {
		in, name, rel string
		ok, err       bool
	}{
		{in: "/abs/path"},
		{in: "loc:archive/a//./b.wav", name: "archive", rel: "a/b.wav", ok: true},
		{in: "loc:archive", name: "archive", ok: true},
		{in: "loc:archive/", name: "archive", ok: true},
		{in: "loc:/x", ok: true, err: true},
		{in: "loc:archive/../x", ok: true, err: true},
		{in: "loc:archive/a/\x00", ok: true, err: true},
	}
	for _, tt := range tests {
		name, rel, ok, err := SplitPath(tt.in)
		if name != tt.name || rel != tt.rel || ok != tt.ok || (err != nil) != tt.err {
			t.Errorf("SplitPath(%q) = %q, %q, %v, %v", tt.in, name, rel, ok, err)
		}
	}
	if _, _, _, err := SplitPath("loc:a/../b"); !errors.Is(err, paths.ErrOutsideRoots) {
		t.Errorf("\"..\" error %v does not match paths.ErrOutsideRoots", err)
	}
}

// The set plugs into paths.Guard: its roots are allowed roots, its Resolve
// is the Locations hook.
func TestGuardHook(t *testing.T) {
	f := setup(t, Options{})
	g, err := paths.NewGuard(f.set.AllRoots())
	if err != nil {
		t.Fatal(err)
	}
	g.Locations = f.set.Resolve
	got, err := g.Resolve("loc:archive/day/x.wav")
	if want := filepath.Join(f.master, "day", "x.wav"); err != nil || got != want {
		t.Errorf("Resolve(loc:archive/day/x.wav) = %q, %v; want %q", got, err, want)
	}
	if _, err := g.Resolve("loc:archive/../x"); !errors.Is(err, paths.ErrOutsideRoots) {
		t.Errorf("\"..\" = %v, want ErrOutsideRoots", err)
	}
	if _, err := g.Resolve("loc:nope/x"); !errors.Is(err, ErrUnknown) {
		t.Errorf("unknown location = %v, want ErrUnknown", err)
	}
	// A link planted in the master that leads out is still refused.
	if err := os.Symlink("/etc", filepath.Join(f.master, "out")); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Resolve("loc:archive/out/passwd"); !errors.Is(err, paths.ErrOutsideRoots) {
		t.Errorf("link out of the root = %v, want ErrOutsideRoots", err)
	}
}
