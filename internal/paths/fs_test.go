package paths

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestOpenBeneath checks the file operations against the tree of setup,
// and against a tree changed after Resolve: the check passed, but the
// operation must still not leave the root.
func TestOpenBeneath(t *testing.T) {
	var base, root string // of the subtest running: the swaps use them
	tests := []struct {
		name    string
		path    string
		swap    func(t *testing.T) // run between Resolve and Open
		wantErr bool
	}{
		{"plain file", "root/dir/file", nil, false},
		{"through a link inside", "root/in/file", nil, false},
		{"a relative link to a file inside", "root/rel-file", nil, false},
		{"an absolute link to a file inside", "root/abs-file", nil, false},
		{"dir swapped for a link out", "root/dir/file", func(t *testing.T) {
			t.Helper()
			mustRename(t, filepath.Join(root, "dir"), filepath.Join(root, "dir.real"))
			mustSymlink(t, "../outside", filepath.Join(root, "dir"))
			mustRename(t, filepath.Join(base, "outside", "secret"), filepath.Join(base, "outside", "file"))
		}, true},
		{"dir swapped for an absolute link out", "root/dir/file", func(t *testing.T) {
			t.Helper()
			mustRename(t, filepath.Join(root, "dir"), filepath.Join(root, "dir.real"))
			mustSymlink(t, filepath.Join(base, "outside"), filepath.Join(root, "dir"))
			mustRename(t, filepath.Join(base, "outside", "secret"), filepath.Join(base, "outside", "file"))
		}, true},
		{"file swapped for a link out", "root/dir/file", func(t *testing.T) {
			t.Helper()
			mustRemove(t, filepath.Join(root, "dir", "file"))
			mustSymlink(t, "../../outside/secret", filepath.Join(root, "dir", "file"))
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var g *Guard
			base, g = setup(t)
			root = filepath.Join(base, "root")
			mustSymlink(t, "dir/file", filepath.Join(root, "rel-file"))
			mustSymlink(t, filepath.Join(root, "dir", "file"), filepath.Join(root, "abs-file"))
			p, err := g.Resolve(filepath.Join(base, tc.path))
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if tc.swap != nil {
				tc.swap(t)
			}
			f, err := g.Open(p)
			if tc.wantErr {
				if err == nil {
					b, _ := io.ReadAll(f)
					f.Close()
					t.Fatalf("Open(%s) read %q from outside the root", p, b)
				}
				if _, err := g.Stat(p); err == nil {
					t.Errorf("Stat(%s) followed the link out", p)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open(%s): %v", p, err)
			}
			f.Close()
		})
	}
}

// TestWriteBeneath: creating, renaming and removing through a directory
// swapped for a link out fails, and nothing appears outside.
func TestWriteBeneath(t *testing.T) {
	base, g := setup(t)
	root := filepath.Join(base, "root")
	dir, err := g.Resolve(filepath.Join(root, "dir"))
	if err != nil {
		t.Fatal(err)
	}
	mustRename(t, filepath.Join(root, "dir"), filepath.Join(root, "dir.real"))
	mustSymlink(t, "../outside", filepath.Join(root, "dir"))
	if f, _, err := g.CreateTemp(dir, "x-*"); err == nil {
		f.Close()
		t.Error("CreateTemp wrote through a link out")
	}
	if err := g.MkdirAll(filepath.Join(dir, "sub"), 0o755); err == nil {
		t.Error("MkdirAll created through a link out")
	}
	if err := g.Remove(filepath.Join(dir, "secret")); err == nil {
		t.Error("Remove deleted through a link out")
	}
	if err := g.Rename(filepath.Join(root, "dir.real", "file"), filepath.Join(dir, "moved")); err == nil {
		t.Error("Rename moved a file out")
	}
	ents, err := os.ReadDir(filepath.Join(base, "outside"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "secret" {
		t.Errorf("outside holds %v, want only secret", ents)
	}
}

// TestRenameAcrossRoots: two roots not nested rename as across file
// systems (the move handler then copies); nested roots rename through
// the outer one.
func TestRenameAcrossRoots(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"a", "b", "a/inner"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	g := mustGuard(t, []string{filepath.Join(base, "a"), filepath.Join(base, "b"), filepath.Join(base, "a", "inner")})
	from := filepath.Join(base, "a", "f")
	if err := os.WriteFile(from, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.Rename(from, filepath.Join(base, "b", "f")); !errors.Is(err, syscall.EXDEV) {
		t.Errorf("rename across roots = %v, want EXDEV", err)
	}
	if err := g.Rename(from, filepath.Join(base, "a", "inner", "f")); err != nil {
		t.Errorf("rename into a nested root: %v", err)
	}
}

// TestDeny is finding 8 of issue 13: dpe up's data directory holds the
// core database; only the folders for files under it are allowed.
func TestDeny(t *testing.T) {
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(base, "dpe-data")
	for _, d := range []string{"dpe-data/files", "work"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"dpe-data/dpe.db", "dpe-data/files/a", "work/b"} {
		if err := os.WriteFile(filepath.Join(base, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustSymlink(t, "../dpe-data/dpe.db", filepath.Join(base, "work", "db-link"))
	g := mustGuard(t, []string{base, filepath.Join(data, "files")})
	if err := g.Deny(data); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		ok   bool
	}{
		{"work/b", true},
		{"dpe-data/files/a", true},
		{"dpe-data/files/new", true},
		{"dpe-data/dpe.db", false},
		{"dpe-data/dpe.db-wal", false},
		{"dpe-data", false},
		{"dpe-data/files/../dpe.db", false},
		{"work/db-link", false},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			_, err := g.Resolve(filepath.Join(base, tc.path))
			switch {
			case tc.ok && err != nil:
				t.Errorf("Resolve: %v", err)
			case !tc.ok && !errors.Is(err, ErrOutsideRoots):
				t.Errorf("Resolve = %v, want ErrOutsideRoots", err)
			}
		})
	}
	// A path checked while harmless, then swapped for a link to the
	// database, is caught when opened.
	p, err := g.Resolve(filepath.Join(base, "work", "b"))
	if err != nil {
		t.Fatal(err)
	}
	mustRemove(t, filepath.Join(base, "work", "b"))
	mustSymlink(t, "../dpe-data/dpe.db", filepath.Join(base, "work", "b"))
	if f, err := g.Open(p); err == nil {
		f.Close()
		t.Error("Open followed a link swapped in to the core database")
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

func mustSymlink(t *testing.T, target, name string) {
	t.Helper()
	if err := os.Symlink(target, name); err != nil {
		t.Fatal(err)
	}
}

func mustRemove(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}
