package paths

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// setup builds a tree of real directories and links:
//
//	base/root/             the allowed root
//	base/root/dir/file
//	base/root/in  -> dir          (link inside)
//	base/root/out -> ../outside   (link out)
//	base/root/abs -> base/outside (absolute link out)
//	base/root/dangling -> ../outside/missing
//	base/root/loop -> loop
//	base/outside/secret
//	base/rootlink -> root
func setup(t testing.TB) (base string, g *Guard) {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"root/dir", "outside"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"root/dir/file", "outside/secret"} {
		if err := os.WriteFile(filepath.Join(base, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"root/in":       "dir",
		"root/out":      "../outside",
		"root/abs":      filepath.Join(base, "outside"),
		"root/dangling": "../outside/missing",
		"root/loop":     "loop",
		"rootlink":      "root",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(base, name)); err != nil {
			t.Fatal(err)
		}
	}
	g, err = NewGuard([]string{filepath.Join(base, "root")})
	if err != nil {
		t.Fatal(err)
	}
	return base, g
}

func TestResolve(t *testing.T) {
	base, g := setup(t)
	root := filepath.Join(base, "root")
	tests := []struct {
		name string
		path string
		want string // resolved path; "" when an error is expected
		err  error  // nil: any error will do when want is ""
	}{
		{"root itself", root, root, nil},
		{"root with slash", root + "/", root, nil},
		{"file", root + "/dir/file", root + "/dir/file", nil},
		{"not yet existing", root + "/new/sub/file.wav", root + "/new/sub/file.wav", nil},
		{"cleaned", root + "//dir/./file", root + "/dir/file", nil},
		{"dotdot inside", root + "/dir/../dir/file", root + "/dir/file", nil},
		{"dotdot after missing dir", root + "/missing/../dir/file", root + "/dir/file", nil},
		{"link inside", root + "/in/file", root + "/dir/file", nil},
		{"last element link inside kept", root + "/in", root + "/in", nil},
		{"root through link", base + "/rootlink/dir/file", root + "/dir/file", nil},
		{"dotdot escape", root + "/../outside/secret", "", ErrOutsideRoots},
		{"deep dotdot escape", root + "/dir/../../../../etc/passwd", "", ErrOutsideRoots},
		{"dotdot escape after missing", root + "/missing/../../outside", "", ErrOutsideRoots},
		{"link out", root + "/out/secret", "", ErrOutsideRoots},
		{"link out as last element", root + "/out", "", ErrOutsideRoots},
		{"absolute link out", root + "/abs/secret", "", ErrOutsideRoots},
		{"target under link out", root + "/out/new-file", "", ErrOutsideRoots},
		{"dangling link out", root + "/dangling", "", ErrOutsideRoots},
		// The kernel resolves out/.. to base, not to root: so must we.
		{"dotdot after link", root + "/out/../root/dir/file", root + "/dir/file", nil},
		{"dotdot after link out", root + "/out/../outside/secret", "", ErrOutsideRoots},
		{"outside", "/etc/passwd", "", ErrOutsideRoots},
		{"prefix is not a parent", root + "x/file", "", ErrOutsideRoots},
		{"relative", "dir/file", "", ErrRelative},
		{"loc without resolver", "loc:archive/a.wav", "", ErrNoLocations},
		{"link loop", root + "/loop/x", "", nil},
		{"empty", "", "", nil},
		{"nul", root + "/a\x00b", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := g.Resolve(tt.path)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("Resolve(%q) = %q, %v; want %q", tt.path, got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve(%q) = %q, want an error", tt.path, got)
			}
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("Resolve(%q) error %v, want %v", tt.path, err, tt.err)
			}
		})
	}
}

func TestUnconfined(t *testing.T) {
	base, _ := setup(t)
	for _, g := range []*Guard{nil, mustGuard(t, nil)} {
		if !g.Unconfined() {
			t.Fatal("no roots: want unconfined")
		}
		got, err := g.Resolve(base + "/root/out/secret")
		if want := base + "/outside/secret"; err != nil || got != want {
			t.Errorf("Resolve = %q, %v; want %q", got, err, want)
		}
		t.Chdir(base)
		got, err = g.Resolve("rootlink/dir/../x")
		if want := base + "/root/x"; err != nil || got != want {
			t.Errorf("Resolve(relative) = %q, %v; want %q", got, err, want)
		}
		if g.IsRoot("/") {
			t.Error("unconfined IsRoot(/) = true")
		}
	}
	if mustGuard(t, []string{base}).Unconfined() {
		t.Error("one root: want confined")
	}
}

func TestNewGuard(t *testing.T) {
	base, _ := setup(t)
	if _, err := NewGuard([]string{base + "/nope"}); err == nil || !strings.Contains(err.Error(), base+"/nope") {
		t.Errorf("missing root: err = %v, want one naming it", err)
	}
	if _, err := NewGuard([]string{base + "/root/dir/file"}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("file root: err = %v", err)
	}
	if _, err := NewGuard([]string{""}); err == nil {
		t.Error("empty root accepted")
	}
	// A root given through a link is stored resolved, and duplicates are dropped.
	g := mustGuard(t, []string{base + "/rootlink", base + "/root", base + "/outside"})
	want := []string{base + "/root", base + "/outside"}
	if got := g.Roots(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Roots() = %q, want %q", got, want)
	}
	if !g.IsRoot(base+"/root") || g.IsRoot(base+"/root/dir") {
		t.Error("IsRoot wrong")
	}
	// With two roots, a link from one to the other is fine.
	if got, err := g.Resolve(base + "/root/out/secret"); err != nil || got != base+"/outside/secret" {
		t.Errorf("Resolve across roots = %q, %v", got, err)
	}
	// A relative root is taken from the working directory.
	t.Chdir(base)
	g = mustGuard(t, []string{"root"})
	if got := g.Roots(); len(got) != 1 || got[0] != base+"/root" {
		t.Errorf("relative root = %q", got)
	}
}

func TestLocations(t *testing.T) {
	base, g := setup(t)
	root := filepath.Join(base, "root")
	var gotRel string
	g.Locations = func(name, rel string) (string, error) {
		switch name {
		case "archive":
			gotRel = rel
			return filepath.Join(root, "dir", filepath.FromSlash(rel)), nil
		case "elsewhere":
			return filepath.Join(base, "outside", rel), nil
		case "relative":
			return "dir/" + rel, nil
		}
		return "", errors.New("unknown location")
	}
	tests := []struct {
		path, want, rel string
		err             error
	}{
		{path: "loc:archive/file", want: root + "/dir/file", rel: "file"},
		{path: "loc:archive", want: root + "/dir", rel: ""},
		{path: "loc:archive/", want: root + "/dir", rel: ""},
		{path: "loc:archive/./a//b.wav", want: root + "/dir/a/b.wav", rel: "a/b.wav"},
		{path: "loc:archive/../x", err: ErrOutsideRoots},
		{path: "loc:elsewhere/secret", err: ErrOutsideRoots},
		{path: "loc:relative/x"},
		{path: "loc:nope/x"},
		{path: "loc:/x"},
	}
	for _, tt := range tests {
		gotRel = "-"
		got, err := g.Resolve(tt.path)
		if tt.want != "" {
			if err != nil || got != tt.want || gotRel != tt.rel {
				t.Errorf("Resolve(%q) = %q, %v (rel %q); want %q (rel %q)", tt.path, got, err, gotRel, tt.want, tt.rel)
			}
			continue
		}
		if err == nil || tt.err != nil && !errors.Is(err, tt.err) {
			t.Errorf("Resolve(%q) = %q, %v; want error %v", tt.path, got, err, tt.err)
		}
	}
}

func mustGuard(t *testing.T, roots []string) *Guard {
	t.Helper()
	g, err := NewGuard(roots)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// FuzzResolve checks the guard's promise: whatever the input, an accepted
// path is absolute, clean and under the root, and so is what its directory
// really is on disk.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{"dir/file", "../outside/secret", "in/../../outside", "out/x", "abs", "missing/../../x", "loop/x", "./dir//file/..", "dangling"} {
		f.Add(s)
	}
	base, g := setup(f)
	root := filepath.Join(base, "root")
	f.Fuzz(func(t *testing.T, rel string) {
		got, err := g.Resolve(root + "/" + rel)
		if err != nil {
			return
		}
		if !filepath.IsAbs(got) || filepath.Clean(got) != got || !g.within(got) {
			t.Fatalf("Resolve(%q) = %q: not a clean path under the root", rel, got)
		}
		if real, err := filepath.EvalSymlinks(filepath.Dir(got)); err == nil && !g.IsRoot(got) && !g.within(real) {
			t.Fatalf("Resolve(%q) = %q, whose directory is really %q", rel, got, real)
		}
		if real, err := filepath.EvalSymlinks(got); err == nil && !g.within(real) {
			t.Fatalf("Resolve(%q) = %q, which is really %q", rel, got, real)
		}
	})
}
