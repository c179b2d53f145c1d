package paths

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitLocation(t *testing.T) {
	tests := []struct {
		in, name, rel string
		ok            bool
		err           error // nil: no error; errAny: some error
	}{
		{in: "/abs/path"},
		{in: "relative/loc:x"},
		{in: "LOC:archive/x"}, // the prefix is case-sensitive
		{in: "loc:archive/a//./b.wav", name: "archive", rel: "a/b.wav", ok: true},
		{in: "loc:archive", name: "archive", ok: true},
		{in: "loc:archive/", name: "archive", ok: true},
		{in: "loc:archive/./", name: "archive", ok: true},
		{in: "loc:archive/a/b/", name: "archive", rel: "a/b", ok: true},
		{in: "loc:archive/a..b/..c", name: "archive", rel: "a..b/..c", ok: true},
		{in: "loc:", ok: true, err: errAny},
		{in: "loc:/x", ok: true, err: errAny},
		{in: "loc:archive/../x", ok: true, err: ErrOutsideRoots},
		{in: "loc:archive/a/..", ok: true, err: ErrOutsideRoots},
		{in: "loc:archive/a/\x00", ok: true, err: errAny},
	}
	if filepath.Separator != '/' {
		tests = append(tests, struct {
			in, name, rel string
			ok            bool
			err           error
		}{in: "loc:archive/a" + string(filepath.Separator) + "b", ok: true, err: errAny})
	}
	for _, tt := range tests {
		name, rel, ok, err := SplitLocation(tt.in)
		if name != tt.name || rel != tt.rel || ok != tt.ok || (err != nil) != (tt.err != nil) {
			t.Errorf("SplitLocation(%q) = %q, %q, %v, %v; want %q, %q, %v, error %v", tt.in, name, rel, ok, err, tt.name, tt.rel, tt.ok, tt.err)
			continue
		}
		if tt.err != nil && tt.err != errAny && !errors.Is(err, tt.err) {
			t.Errorf("SplitLocation(%q) error %v does not match %v", tt.in, err, tt.err)
		}
	}
}

var errAny = errors.New("any error")

// The guard parses loc: paths with SplitLocation: what it refuses, the
// guard refuses before asking Locations.
func TestGuardUsesSplitLocation(t *testing.T) {
	asked := 0
	g := &Guard{Locations: func(name, rel string) (string, error) {
		asked++
		return "/" + name + "/" + rel, nil
	}}
	for _, p := range []string{"loc:/x", "loc:a/../b", "loc:a/b/.."} {
		if _, err := g.Resolve(p); err == nil {
			t.Errorf("Resolve(%q) accepted", p)
		}
	}
	if asked != 0 {
		t.Errorf("Locations asked %d times for refused paths", asked)
	}
}

// FuzzSplitLocation checks the parser's promises on any input: a path
// without the prefix is not a location path; an accepted one has a name
// without '/', a clean relative path, and parses again to itself.
func FuzzSplitLocation(f *testing.F) {
	for _, s := range []string{
		"", "/abs", "loc:", "loc:a", "loc:a/", "loc:a/b/c.wav", "loc:a//./b",
		"loc:a/../b", "loc:/b", "loc:a/b\x00", "loc:a/..b", "loc:a\\b/c", "loc:a/b\\..\\c",
		"loc:loc:a/b", "loc:a/b/./../c",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		name, rel, ok, err := SplitLocation(p)
		if !ok {
			if strings.HasPrefix(p, LocationPrefix) || name != "" || rel != "" || err != nil {
				t.Fatalf("SplitLocation(%q) = %q, %q, %v, %v for a path that is no location path", p, name, rel, ok, err)
			}
			return
		}
		if !strings.HasPrefix(p, LocationPrefix) {
			t.Fatalf("SplitLocation(%q): ok without the prefix", p)
		}
		if err != nil {
			if name != "" || rel != "" {
				t.Fatalf("SplitLocation(%q) = %q, %q with error %v", p, name, rel, err)
			}
			return
		}
		if name == "" || strings.Contains(name, "/") {
			t.Fatalf("SplitLocation(%q): name %q", p, name)
		}
		if strings.IndexByte(rel, 0) >= 0 || strings.HasPrefix(rel, "/") || strings.HasSuffix(rel, "/") {
			t.Fatalf("SplitLocation(%q): rel %q is not clean", p, rel)
		}
		if rel != "" {
			for _, e := range strings.Split(rel, "/") {
				if e == "" || e == "." || e == ".." || (filepath.Separator != '/' && strings.ContainsRune(e, filepath.Separator)) {
					t.Fatalf("SplitLocation(%q): rel %q has the element %q", p, rel, e)
				}
			}
		}
		n2, r2, ok2, err2 := SplitLocation(LocationPrefix + name + "/" + rel)
		if n2 != name || r2 != rel || !ok2 || err2 != nil {
			t.Fatalf("SplitLocation(%q) = %q, %q; its re-join parses to %q, %q, %v, %v", p, name, rel, n2, r2, ok2, err2)
		}
	})
}
