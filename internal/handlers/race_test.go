//go:build unix

package handlers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/dpe-engine/dpe/internal/jobtype"
)

// swapper turns dir into a symbolic link to target and back, as fast as
// it can, until stop is closed: the attack of finding 4 of issue 13.
func swapper(t *testing.T, dir, target string, stop <-chan struct{}) {
	t.Helper()
	hidden := dir + ".real"
	for {
		select {
		case <-stop:
			return
		default:
		}
		// Errors are expected while jobs work in the directory; the loop
		// only has to make the link appear now and then.
		_ = os.Rename(dir, hidden)
		_ = os.Symlink(target, dir)
		_ = os.Remove(dir)
		_ = os.Rename(hidden, dir)
		// Leave the real directory in place a while, so that most checks
		// pass and the link comes in between a check and an open.
		for range 200 {
			runtime.Gosched()
		}
	}
}

// TestSymlinkSwapRace copies a file whose directory a concurrent loop
// swaps for a link to a directory outside the root, thousands of times,
// reading (copy from the swapped dir) and writing (copy into it). Checked
// and then opened by name, copies leaked (the code before os.Root: 7 of
// 3000 reads took the secret, 1 of 300 writes landed outside); opened
// beneath the root, none may, whatever the timing.
func TestSymlinkSwapRace(t *testing.T) {
	tests := []struct {
		name     string
		write    bool // copy into the swapped directory instead of from it
		attempts int  // writes sync every file: fewer
	}{
		{"read through the swapped dir", false, 3000},
		{"write through the swapped dir", true, 300},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t)
			dir := filepath.Join(b.root, "d")
			writeFile(t, filepath.Join(dir, "f.txt"), "inside")
			writeFile(t, filepath.Join(b.outside, "f.txt"), "SECRET")
			src := filepath.Join(b.root, "src.txt")
			writeFile(t, src, "inside")
			stop := make(chan struct{})
			var wg sync.WaitGroup
			// A relative link, as a user inside the root would plant it.
			wg.Go(func() { swapper(t, dir, "../outside", stop) })
			ok, failed, blocked := 0, 0, 0
			for i := range tc.attempts {
				params := map[string]any{"from": filepath.Join(dir, "f.txt"), "to": filepath.Join(b.root, "out", fmt.Sprintf("%d.txt", i))}
				if tc.write {
					params = map[string]any{"from": src, "to": filepath.Join(dir, fmt.Sprintf("w%d.txt", i))}
				}
				if _, err := b.h[jobtype.Copy].Run(context.Background(), task(t, jobtype.Copy, params, nil)); err != nil {
					failed++
					if strings.Contains(err.Error(), "escapes") {
						blocked++ // the check passed, the link came, the open refused it
					}
				} else {
					ok++
				}
			}
			close(stop)
			wg.Wait()
			// Every copy that read took "inside"; nothing was written next
			// to the secret.
			leaked := 0
			outs, _ := os.ReadDir(filepath.Join(b.root, "out"))
			for _, e := range outs {
				if strings.Contains(readFile(t, filepath.Join(b.root, "out", e.Name())), "SECRET") {
					leaked++
				}
			}
			outside, err := os.ReadDir(b.outside)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range outside {
				if e.Name() != "f.txt" {
					leaked++
				}
			}
			t.Logf("%d attempts: %d copied, %d refused or failed (%d by the root after the check had passed), %d outside the root", tc.attempts, ok, failed, blocked, leaked)
			if leaked != 0 {
				t.Errorf("%d of %d copies read or wrote outside the root", leaked, tc.attempts)
			}
			if ok+blocked == 0 {
				t.Error("no copy got past the check: the race was not exercised")
			}
		})
	}
}
