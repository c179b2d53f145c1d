package paths

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzOpenBeneath opens whatever Resolve accepts and checks where the
// opened file really is (/proc/self/fd): under the root, never the
// secret outside it. Inputs may also name the paths directly, so Open is
// fuzzed on paths Resolve refused, which it must refuse too.
func FuzzOpenBeneath(f *testing.F) {
	for _, s := range []string{"dir/file", "../outside/secret", "in/file", "out/secret", "abs/secret", "dangling", "loop", ".", "dir/../in/./file"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	base, g := setup(f)
	root := filepath.Join(base, "root")
	f.Fuzz(func(t *testing.T, rel string, raw bool) {
		p, err := g.Resolve(root + "/" + rel)
		if raw {
			p, err = filepath.Clean(root+"/"+rel), nil
		}
		if err != nil {
			return
		}
		file, err := g.Open(p)
		if err != nil {
			return
		}
		defer file.Close()
		real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(file.Fd())))
		if err != nil {
			t.Fatalf("where is the open file? %v", err)
		}
		if !g.within(real) {
			t.Fatalf("Open(%q) opened %q, outside the root", p, real)
		}
	})
}

// FuzzWriteBeneath runs a mutating operation on paths named directly,
// unchecked by Resolve, in a root holding a denied dir and links to it
// and out of the root: whatever the operation does, the denied dir and
// the directory outside are left as they were.
func FuzzWriteBeneath(f *testing.F) {
	for _, s := range []string{"dir/file", "todata/db", "todata", "data/db", "out/secret", "dir/../data/db", "todata/new/sub", "in/file", "."} {
		for op := range byte(5) {
			f.Add(op, s, "dir/new")
			f.Add(op, "dir/file", s)
		}
	}
	f.Fuzz(func(t *testing.T, op byte, rel, rel2 string) {
		base, g := setup(t)
		root := filepath.Join(base, "root")
		data := filepath.Join(root, "data")
		if err := os.Mkdir(data, 0o755); err != nil {
			t.Fatal(err)
		}
		mkfiles(t, []string{"db"}, data)
		mustSymlink(t, "data", filepath.Join(root, "todata"))
		mustSymlink(t, "data/db", filepath.Join(root, "dblink"))
		if err := g.Deny(data); err != nil {
			t.Fatal(err)
		}
		before := [][]string{snapshot(t, data), snapshot(t, filepath.Join(base, "outside"))}
		p, p2 := filepath.Clean(root+"/"+rel), filepath.Clean(root+"/"+rel2)
		switch op % 5 {
		case 0:
			_ = g.Remove(p)
		case 1:
			_ = g.Rename(p, p2)
		case 2:
			_ = g.MkdirAll(p, 0o755)
		case 3:
			_ = g.Chtimes(p, stamp, stamp)
		case 4:
			if file, _, err := g.CreateTemp(p, "t-*"); err == nil {
				file.Close()
			}
		}
		after := [][]string{snapshot(t, data), snapshot(t, filepath.Join(base, "outside"))}
		for i := range before {
			if !slices.Equal(before[i], after[i]) {
				t.Fatalf("op %d on %q, %q changed a dir it may not:\n\t%s\nnow:\n\t%s", op%5, p, p2, strings.Join(before[i], "\n\t"), strings.Join(after[i], "\n\t"))
			}
		}
	})
}
