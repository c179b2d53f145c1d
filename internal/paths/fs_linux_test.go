package paths

import (
	"os"
	"path/filepath"
	"strconv"
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
