package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/jobtype"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestCopy(t *testing.T) {
	b := setup(t)
	from := filepath.Join(b.root, "in", "a.wav")
	to := filepath.Join(b.root, "out", "sub", "a.wav")
	writeFile(t, from, "audio data")
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Chtimes(from, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(from, 0o640); err != nil {
		t.Fatal(err)
	}
	params := map[string]any{"from": from, "to": to}

	res, err := b.run(t, jobtype.Copy, params)
	want := copyResult{From: from, To: to, Size: 10, SHA256: sha256Hex("audio data")}
	if err != nil || res != want {
		t.Fatalf("first copy = %+v, %v; want %+v", res, err, want)
	}
	if got := readFile(t, to); got != "audio data" {
		t.Errorf("target holds %q", got)
	}
	fi, err := os.Stat(to)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(mtime) {
		t.Errorf("target mode %v mtime %v, want 0640 and %v", fi.Mode().Perm(), fi.ModTime(), mtime)
	}
	if got := listDir(t, filepath.Dir(to)); !slices.Equal(got, []string{"a.wav"}) {
		t.Errorf("target dir holds %v, want only a.wav", got)
	}

	// Idempotent: the second run finds the content in place.
	res, err = b.run(t, jobtype.Copy, params)
	want.Skipped = true
	if err != nil || res != want {
		t.Fatalf("second copy = %+v, %v; want %+v", res, err, want)
	}
	// Copying a file onto itself is also already done.
	if res, err := b.run(t, jobtype.Copy, map[string]any{"from": to, "to": to}); err != nil || !res.(copyResult).Skipped {
		t.Errorf("self copy = %+v, %v", res, err)
	}
}

func TestCopyExistingTarget(t *testing.T) {
	tests := []struct {
		name      string
		target    string
		overwrite bool
		wantErr   bool // a permanent error, target untouched
	}{
		{"different size refused", "other content", false, true},
		{"same size different content refused", "AUDIO DATA", false, true},
		{"different size overwritten", "other content", true, false},
		{"same size overwritten", "AUDIO DATA", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t)
			from, to := filepath.Join(b.root, "a"), filepath.Join(b.root, "b")
			writeFile(t, from, "audio data")
			writeFile(t, to, tt.target)
			res, err := b.run(t, jobtype.Copy, map[string]any{"from": from, "to": to, "overwrite": tt.overwrite})
			if tt.wantErr {
				if !IsPermanent(err) || !errors.Is(err, errTargetDiffers) {
					t.Fatalf("err = %v, want permanent errTargetDiffers", err)
				}
				if got := readFile(t, to); got != tt.target {
					t.Errorf("target changed to %q", got)
				}
				return
			}
			if err != nil || res.(copyResult).Skipped {
				t.Fatalf("copy = %+v, %v", res, err)
			}
			if got := readFile(t, to); got != "audio data" {
				t.Errorf("target holds %q", got)
			}
		})
	}
}

func TestCopyErrors(t *testing.T) {
	b := setup(t)
	dir := filepath.Join(b.root, "dir")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(b.root, "file")
	writeFile(t, file, "x")
	tests := []struct {
		name     string
		from, to string
	}{
		{"missing source", filepath.Join(b.root, "nope"), filepath.Join(b.root, "x")},
		{"directory source", dir, filepath.Join(b.root, "x")},
		{"directory target", file, dir},
		{"target under a file", file, filepath.Join(file, "x")},
	}
	for _, tt := range tests {
		if _, err := b.run(t, jobtype.Copy, map[string]any{"from": tt.from, "to": tt.to}); !IsPermanent(err) {
			t.Errorf("%s: err = %v, want permanent", tt.name, err)
		}
	}
}

// Cancelling a copy stops it between chunks and leaves no temporary file.
func TestCopyCancel(t *testing.T) {
	b := setup(t)
	from := filepath.Join(b.root, "big")
	to := filepath.Join(b.root, "out", "big")
	writeFile(t, from, strings.Repeat("x", 8*bufSize))
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stop := errors.New("lease lost")
	var pr progress
	tk := task(t, jobtype.Copy, map[string]any{"from": from, "to": to}, nil)
	tk.Progress = func(pct int, msg string) {
		pr.report(pct, msg)
		cancel(stop) // at the first report, one chunk in
	}
	_, err := b.h[jobtype.Copy].Run(ctx, tk)
	if !errors.Is(err, context.Canceled) || !errors.Is(err, stop) || IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable context.Canceled carrying the cause", err)
	}
	if got := listDir(t, filepath.Dir(to)); len(got) != 0 {
		t.Errorf("target dir holds %v after cancel, want nothing", got)
	}
	if got := pr.reports(); len(got) != 1 || got[0] <= 0 || got[0] >= 100 {
		t.Errorf("progress reports %v, want one partial", got)
	}
}

// Progress is reported by bytes, throttled to steps of 5% at most.
func TestCopyProgress(t *testing.T) {
	b := setup(t)
	from := filepath.Join(b.root, "big")
	writeFile(t, from, strings.Repeat("x", 40*bufSize))
	var pr progress
	tk := task(t, jobtype.Copy, map[string]any{"from": from, "to": from + ".copy"}, &pr)
	if _, err := b.h[jobtype.Copy].Run(context.Background(), tk); err != nil {
		t.Fatal(err)
	}
	got := pr.reports()
	if len(got) == 0 || got[len(got)-1] != 100 {
		t.Fatalf("progress %v, want it to end at 100", got)
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Errorf("progress %v does not grow", got)
		}
	}
	if len(got) > 40 {
		t.Errorf("%d progress reports for 40 chunks: not throttled", len(got))
	}
}
