package paths

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// denyTree builds, under a fresh base:
//
//	base/root/              the allowed root
//	base/root/dir/file
//	base/root/dir/sub/      empty
//	base/root/full/x        a directory not empty
//	base/root/in    -> dir
//	base/root/flink -> dir/file
//	base/root/dangling -> missing
//	base/root/outfile -> ../outside/secret
//	base/root/zz/           denied by the guard with denied dirs
//	base/outside/secret
//
// and returns base with a guard on root, with zz denied if deny is set.
func denyTree(t *testing.T, deny bool) (string, *Guard) {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"root/dir/sub", "root/full", "root/zz", "outside"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mkfiles(t, []string{"file"}, filepath.Join(base, "root", "dir"))
	mkfiles(t, []string{"x"}, filepath.Join(base, "root", "full"))
	mkfiles(t, []string{"secret"}, filepath.Join(base, "outside"))
	for name, target := range map[string]string{"in": "dir", "flink": "dir/file", "dangling": "missing", "outfile": "../outside/secret"} {
		mustSymlink(t, target, filepath.Join(base, "root", name))
	}
	g := mustGuard(t, []string{filepath.Join(base, "root")})
	if deny {
		if err := g.Deny(filepath.Join(base, "root", "zz")); err != nil {
			t.Fatal(err)
		}
	}
	return base, g
}

// mkfiles creates the named files in each of dirs.
func mkfiles(t *testing.T, names []string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(d, n), []byte(d), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// stamp is the time Chtimes sets in TestDenySameSemantics.
var stamp = time.Date(2003, 3, 3, 3, 3, 3, 0, time.UTC)

var tempName = regexp.MustCompile(`t-[0-9a-f]{16}`)

// snapshot lists the tree under base: each entry with its type, a file
// with its content and, once Chtimes set it, the stamp.
func snapshot(t *testing.T, base string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		e := tempName.ReplaceAllString(rel, "t-*") + " " + d.Type().String()
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			e += " -> " + target
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e += " " + strings.TrimPrefix(string(b), base)
		}
		if fi, err := os.Lstat(p); err == nil && fi.ModTime().Equal(stamp) {
			e += " stamped"
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDenySameSemantics runs each mutating operation twice, on equal
// trees: with a guard that has a denied dir (the operations pinned on
// Linux) and with one that has none (os.Root alone). Results, error
// messages and the trees after must be the same, except where noted.
func TestDenySameSemantics(t *testing.T) {
	tests := []struct {
		name    string
		op      func(g *Guard, root string) error
		errDiff bool // both fail, with different messages
	}{
		{"Remove a file", remove("dir/file"), false},
		{"Remove an empty dir", remove("dir/sub"), false},
		{"Remove a dir not empty", remove("full"), false},
		{"Remove a link, not its target", remove("in"), false},
		{"Remove a missing file", remove("missing"), false},
		{"Remove in a missing dir", remove("missing/x"), false},
		{"Remove under a file", remove("dir/file/x"), false},
		{"Remove through a link inside", remove("in/file"), false},
		{"Remove the root", remove(""), false},
		{"Rename a file", rename("dir/file", "dir/new"), false},
		{"Rename a file over a file", rename("full/x", "dir/file"), false},
		{"Rename a file over a dir", rename("dir/file", "dir/sub"), false},
		{"Rename a dir over a dir", rename("full", "dir/sub"), false},
		{"Rename a dir", rename("full", "dir/full2"), false},
		{"Rename a link", rename("in", "in2"), false},
		{"Rename a missing file", rename("missing", "x"), false},
		{"Rename into a missing dir", rename("dir/file", "missing/x"), false},
		{"Rename through a link inside", rename("in/file", "in/moved"), false},
		{"Rename the root", rename("", "x"), false},
		{"MkdirAll new", mkdirAll("a/b/c"), false},
		{"MkdirAll existing", mkdirAll("dir/sub"), false},
		{"MkdirAll over a file", mkdirAll("dir/file"), false},
		{"MkdirAll under a file", mkdirAll("dir/file/x/y"), false},
		{"MkdirAll through a link inside", mkdirAll("in/new/deeper"), false},
		{"MkdirAll a link to a dir", mkdirAll("in"), false},
		{"MkdirAll a link to a file", mkdirAll("flink"), false},
		{"MkdirAll through a link out", mkdirAll("outfile/x"), false},
		{"MkdirAll through a dangling link", mkdirAll("dangling/x"), false},
		{"MkdirAll a dangling link", mkdirAll("dangling"), false},
		{"MkdirAll deep through a dangling link", mkdirAll("dir/../dangling/x/y"), false},
		{"Chtimes a file", chtimes("dir/file"), false},
		{"Chtimes a dir", chtimes("dir/sub"), false},
		{"Chtimes the root", chtimes(""), false},
		{"Chtimes through a final link", chtimes("flink"), false},
		{"Chtimes a missing file", chtimes("missing"), false},
		{"Chtimes a dangling link", chtimes("dangling"), false},
		// os.Root says the path escapes; the pinned guard checks where
		// the link leads and says the target is outside the roots.
		{"Chtimes through a final link out", chtimes("outfile"), true},
		{"CreateTemp", createTemp("dir"), false},
		{"CreateTemp in the root", createTemp(""), false},
		{"CreateTemp through a link inside", createTemp("in"), false},
		{"CreateTemp in a missing dir", createTemp("missing"), false},
		{"CreateTemp in a file", createTemp("dir/file"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var errs [2]error
			var trees [2][]string
			for i, deny := range []bool{false, true} {
				base, g := denyTree(t, deny)
				errs[i] = tc.op(g, filepath.Join(base, "root"))
				trees[i] = snapshot(t, base)
				if errs[i] != nil {
					errs[i] = errorString(tempName.ReplaceAllString(strings.ReplaceAll(errs[i].Error(), base, "BASE"), "t-*"))
				}
			}
			plain, pinned := errs[0], errs[1]
			switch {
			case (plain == nil) != (pinned == nil):
				t.Errorf("without denied dirs: %v; with: %v", plain, pinned)
			case plain != nil && !tc.errDiff && plain.Error() != pinned.Error():
				t.Errorf("error without denied dirs:\n\t%v\nwith:\n\t%v", plain, pinned)
			case tc.errDiff && plain == nil:
				t.Errorf("succeeded, want an error")
			}
			if !slices.Equal(trees[0], trees[1]) {
				t.Errorf("tree without denied dirs:\n\t%s\nwith:\n\t%s", strings.Join(trees[0], "\n\t"), strings.Join(trees[1], "\n\t"))
			}
		})
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

func remove(rel string) func(*Guard, string) error {
	return func(g *Guard, root string) error { return g.Remove(filepath.Join(root, rel)) }
}

func rename(from, to string) func(*Guard, string) error {
	return func(g *Guard, root string) error {
		return g.Rename(filepath.Join(root, from), filepath.Join(root, to))
	}
}

func mkdirAll(rel string) func(*Guard, string) error {
	return func(g *Guard, root string) error { return g.MkdirAll(filepath.Join(root, rel), 0o750) }
}

func chtimes(rel string) func(*Guard, string) error {
	return func(g *Guard, root string) error { return g.Chtimes(filepath.Join(root, rel), stamp, stamp) }
}

func createTemp(rel string) func(*Guard, string) error {
	return func(g *Guard, root string) error {
		f, _, err := g.CreateTemp(filepath.Join(root, rel), "t-*")
		if err != nil {
			return err
		}
		return f.Close()
	}
}
