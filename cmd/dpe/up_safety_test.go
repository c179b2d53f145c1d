package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUpDeniesDataDir is finding 8 of issue 13: dpe up allowed file jobs
// in its data directory, next to the core database. Its file folders stay
// allowed; the database is refused, by path and through a link.
func TestUpDeniesDataDir(t *testing.T) {
	work := t.TempDir()
	data := filepath.Join(work, "dpe-data")
	addr := freeAddr(t)
	up := startDPE(t, "dpe up", work, "up", "--data", data, "--listen", addr)
	up.waitLine("dpe is up", 60*time.Second)
	url := "http://" + addr

	if err := os.WriteFile(filepath.Join(data, "files", "ok.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(data, "dpe.db"), filepath.Join(work, "db-link")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		ok   bool
	}{
		{filepath.Join(data, "files", "ok.txt"), true},
		{filepath.Join(data, "dpe.db"), false},
		{filepath.Join(work, "db-link"), false},
	}
	for _, tc := range tests {
		out, errOut, code := runDPE(t, work, "job", "submit", "util.checksum", "--param", "path="+tc.path, "--max-attempts", "1", "--wait", "--server", url)
		switch {
		case tc.ok && code != 0:
			t.Errorf("checksum of %s: exit %d:\n%s\n%s", tc.path, code, out, errOut)
		case !tc.ok && (code == 0 || !strings.Contains(out+errOut, "file jobs may not go")):
			t.Errorf("checksum of %s: exit %d, want a refusal naming the rule:\n%s\n%s", tc.path, code, out, errOut)
		}
	}
	if err := up.stop(30 * time.Second); err != nil {
		t.Fatalf("dpe up did not stop: %v\n%s", err, up.output())
	}
}
