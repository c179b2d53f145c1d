package handlers

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestList(t *testing.T) {
	b := setup(t)
	dir := filepath.Join(b.root, "media")
	for _, f := range []string{"a.wav", "B.WAV", "notes.txt", "sub/c.wav", "sub/deep/d.wav"} {
		writeFile(t, filepath.Join(dir, f), "x")
	}
	writeFile(t, filepath.Join(b.outside, "secret.wav"), "x")
	if err := os.Symlink(b.outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	abs := func(names ...string) []string {
		var out []string
		for _, n := range names {
			out = append(out, filepath.Join(dir, n))
		}
		return out
	}
	tests := []struct {
		name    string
		params  map[string]any
		want    []string
		wantErr string
	}{
		{"every file, not recursive", map[string]any{"path": dir}, abs("B.WAV", "a.wav", "notes.txt"), ""},
		{"globs ignore case", map[string]any{"path": dir, "include": []string{"*.wav"}}, abs("B.WAV", "a.wav"), ""},
		{"recursive, links not followed", map[string]any{"path": dir, "include": []string{"*.wav"}, "recursive": true},
			abs("B.WAV", "a.wav", "sub/c.wav", "sub/deep/d.wav"), ""},
		{"limit", map[string]any{"path": dir, "limit": 2}, nil, "more than 2 matching files"},
		{"bad glob", map[string]any{"path": dir, "include": []string{"[a"}}, nil, "params.include[0]"},
		{"outside the roots", map[string]any{"path": b.outside}, nil, "outside"},
		{"missing", map[string]any{"path": filepath.Join(dir, "nope")}, nil, "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := b.run(t, "util.list", tt.params)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			res := out.(listResult)
			if !slices.Equal(res.Files, tt.want) || res.Count != len(tt.want) {
				t.Fatalf("files %v (count %d), want %v", res.Files, res.Count, tt.want)
			}
		})
	}
}
