package location

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLocPath resolves fuzzed loc:NAME/... paths, for reading and for
// writing, against a location with two roots holding a link out: every
// answer is either an error or a path beneath one of the roots, which is
// the root joined with the cleaned relative path.
func FuzzLocPath(f *testing.F) {
	for _, s := range []string{
		"loc:archive/a/b.wav", "loc:archive/../etc/passwd", "loc:archive/a/../../x", "loc:archive", "loc:archive/",
		"loc:nope/x", "loc:/abs", "/abs/path", "loc:archive//./a", "loc:archive/out/x", "loc:archive/a\x00b", "loc:archive/..",
	} {
		f.Add(s)
	}
	base, err := filepath.EvalSymlinks(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	roots := []string{filepath.Join(base, "master"), filepath.Join(base, "replica")}
	for _, d := range roots {
		if err := os.Mkdir(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	// A link out: the path stays lexically beneath the root; opening it
	// beneath the root (paths.OpenBeneath) is what refuses to follow it.
	if err := os.Symlink("/etc", filepath.Join(roots[0], "out")); err != nil {
		f.Fatal(err)
	}
	set, err := New(map[string][]string{"archive": roots}, Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, p string) {
		name, rel, ok, err := SplitPath(p)
		if !ok || err != nil {
			return
		}
		if strings.Contains("/"+rel+"/", "/../") || filepath.IsAbs(rel) {
			t.Fatalf("SplitPath(%q) kept %q", p, rel)
		}
		for _, resolve := range []func(string, string) (string, error){set.Resolve, set.ResolveWrite} {
			got, err := resolve(name, rel)
			if err != nil {
				continue
			}
			beneath := false
			for _, r := range roots {
				if got == join(r, rel) {
					if back, err := filepath.Rel(r, got); err == nil && back != ".." && !strings.HasPrefix(back, "../") {
						beneath = true
					}
				}
			}
			if !beneath {
				t.Fatalf("loc path %q resolved to %q, not beneath %q", p, got, roots)
			}
		}
	})
}
