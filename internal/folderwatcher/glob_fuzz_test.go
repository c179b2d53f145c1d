package folderwatcher

import (
	"path"
	"strings"
	"testing"
)

// FuzzGlob checks include/exclude patterns: a pattern checkGlob accepts
// never fails to match any name (the matcher ignores Match's error), and
// the matcher agrees with path.Match on the relative path (pattern with a
// '/') or the base name (pattern without); checking never panics.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"*.wav", "a/b/c.wav"}, {"news/*.mxf", "news/x.mxf"}, {"news/*.mxf", "a/news/x.mxf"}, {"[a-", "a"},
		{"tmp", "x/tmp"}, {"**/x", "a/x"}, {"/abs", "abs"}, {"a/", "a"}, {"\\*", "*"}, {"[^a]?", "bc"}, {"*", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, rel string) {
		if checkGlob(pattern) != nil {
			return
		}
		rel = strings.Trim(path.Clean("/"+rel), "/")
		if rel == "" {
			return
		}
		name := path.Base(rel)
		subject := name
		if strings.Contains(pattern, "/") {
			subject = rel
		}
		want, err := path.Match(pattern, subject)
		if err != nil {
			t.Fatalf("accepted pattern %q fails on %q: %v", pattern, subject, err)
		}
		if _, err := path.Match(pattern, rel); err != nil {
			t.Fatalf("accepted pattern %q fails on %q: %v", pattern, rel, err)
		}
		inc := newMatcher([]string{pattern}, nil)
		if got := inc.file(rel, name); got != want {
			t.Fatalf("include %q: file(%q) = %v, path.Match says %v", pattern, rel, got, want)
		}
		exc := newMatcher(nil, []string{pattern})
		if exc.file(rel, name) == want || exc.skipDir(rel, name) != want {
			t.Fatalf("exclude %q on %q: file %v, skipDir %v, path.Match says %v", pattern, rel, exc.file(rel, name), exc.skipDir(rel, name), want)
		}
	})
}
