package handlers

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dpe-engine/dpe/internal/jobtype"
)

func TestDelete(t *testing.T) {
	b := setup(t)
	file := filepath.Join(b.root, "f")
	writeFile(t, file, "x")
	full := filepath.Join(b.root, "full")
	writeFile(t, filepath.Join(full, "child"), "x")
	empty := filepath.Join(b.root, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(b.root, "target")
	writeFile(t, target, "kept")
	link := filepath.Join(b.root, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		params    map[string]any
		want      deleteResult
		permanent bool
	}{
		{"file", map[string]any{"path": file}, deleteResult{Path: file, Deleted: true}, false},
		{"gone", map[string]any{"path": file}, deleteResult{Path: file}, false},
		{"gone missing_ok", map[string]any{"path": file, "missing_ok": true}, deleteResult{Path: file}, false},
		{"gone not ok", map[string]any{"path": file, "missing_ok": false}, deleteResult{}, true},
		{"empty dir", map[string]any{"path": empty}, deleteResult{Path: empty, Deleted: true}, false},
		{"full dir", map[string]any{"path": full}, deleteResult{}, true},
		{"link, not its target", map[string]any{"path": link}, deleteResult{Path: link, Deleted: true}, false},
		{"root", map[string]any{"path": b.root}, deleteResult{}, true},
	}
	for _, tt := range tests {
		res, err := b.run(t, jobtype.Delete, tt.params)
		if tt.permanent {
			if !IsPermanent(err) {
				t.Errorf("%s: err = %v, want permanent", tt.name, err)
			}
			continue
		}
		if err != nil || res != tt.want {
			t.Errorf("%s: = %+v, %v; want %+v", tt.name, res, err, tt.want)
		}
	}
	if got := readFile(t, target); got != "kept" {
		t.Errorf("link target holds %q", got)
	}
}

func TestChecksum(t *testing.T) {
	b := setup(t)
	file := filepath.Join(b.root, "abc")
	writeFile(t, file, "abc")
	emptyFile := filepath.Join(b.root, "empty")
	writeFile(t, emptyFile, "")
	tests := []struct {
		params map[string]any
		want   checksumResult
	}{
		{map[string]any{"path": file},
			checksumResult{"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 3, "sha256", file}},
		{map[string]any{"path": file, "algorithm": "sha256"},
			checksumResult{"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 3, "sha256", file}},
		{map[string]any{"path": file, "algorithm": "md5"},
			checksumResult{"900150983cd24fb0d6963f7d28e17f72", 3, "md5", file}},
		{map[string]any{"path": emptyFile},
			checksumResult{"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", 0, "sha256", emptyFile}},
	}
	for _, tt := range tests {
		var pr progress
		res, err := b.h[jobtype.Checksum].Run(t.Context(), task(t, jobtype.Checksum, tt.params, &pr))
		if err != nil || res != tt.want {
			t.Errorf("checksum %v = %+v, %v; want %+v", tt.params, res, err, tt.want)
		}
		if got := pr.reports(); len(got) > 0 && got[len(got)-1] != 100 {
			t.Errorf("progress %v does not end at 100", got)
		}
	}
	for _, p := range []string{b.root, filepath.Join(b.root, "missing")} {
		if _, err := b.run(t, jobtype.Checksum, map[string]any{"path": p}); !IsPermanent(err) {
			t.Errorf("checksum of %s: err = %v, want permanent", p, err)
		}
	}
	// The result's JSON is what workflows read (DESIGN §9).
	res, _ := b.run(t, jobtype.Checksum, map[string]any{"path": file})
	assertJSON(t, res, `{"checksum":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad","size":3,"algorithm":"sha256","path":"`+file+`"}`)
}

func TestMkdir(t *testing.T) {
	b := setup(t)
	dir := filepath.Join(b.root, "a", "b", "c")
	res, err := b.run(t, jobtype.Mkdir, map[string]any{"path": dir})
	if want := (mkdirResult{Path: dir, Created: true}); err != nil || res != want {
		t.Fatalf("mkdir = %+v, %v", res, err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("no directory: %v", err)
	}
	res, err = b.run(t, jobtype.Mkdir, map[string]any{"path": dir})
	if want := (mkdirResult{Path: dir}); err != nil || res != want {
		t.Fatalf("second mkdir = %+v, %v", res, err)
	}
	file := filepath.Join(b.root, "file")
	writeFile(t, file, "x")
	for _, p := range []string{file, filepath.Join(file, "sub")} {
		if _, err := b.run(t, jobtype.Mkdir, map[string]any{"path": p}); !IsPermanent(err) {
			t.Errorf("mkdir %s: err = %v, want permanent", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(b.outside, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Error("mkdir wrote outside the root")
	}
}

// A nil Guard accepts any absolute path (a development set-up).
func TestNilGuardUnconfined(t *testing.T) {
	file := filepath.Join(t.TempDir(), "abc")
	writeFile(t, file, "abc")
	h := Builtins(Config{})[jobtype.Checksum]
	res, err := h.Run(t.Context(), task(t, jobtype.Checksum, map[string]any{"path": file}, nil))
	if err != nil || res.(checksumResult).Size != 3 {
		t.Fatalf("checksum = %+v, %v", res, err)
	}
}
