package folderwatcher

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
)

// makeTree writes n empty files in directories of 1,000 under dir.
func makeTree(t testing.TB, dir string, n int) {
	t.Helper()
	for i := range n {
		sub := filepath.Join(dir, fmt.Sprintf("d%03d", i/1000))
		if i%1000 == 0 {
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%06d.wav", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// bigTempDir is a temporary directory on tmpfs when there is one: making
// and removing 100,000 files on a busy disk takes minutes, on tmpfs a
// second.
func bigTempDir(t testing.TB) string {
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "dpe-folder-test-"); err == nil {
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func Test100kFilesPages(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 files: not in -short")
	}
	dir := bigTempDir(t)
	start := time.Now()
	makeTree(t, dir, 100_000)
	t.Logf("100,000 files made in %s", time.Since(start))
	e := setup(t, func(c *Config) { c.Path = dir })

	start = time.Now()
	e.poll() // at start: a full pass, every file unstable
	t.Logf("full pass of 100,000 unstable files: %s", time.Since(start))
	ps := e.srv.takePages()
	if len(ps) != 100 {
		t.Fatalf("full pass sent %d pages, want 100", len(ps))
	}
	for i, p := range ps {
		if p.Pass != ps[0].Pass || p.Incremental || p.Items != PageSize || p.Unstable != PageSize || p.Complete != (i == 99) {
			t.Fatalf("page %d = %+v (first %+v)", i, p, ps[0])
		}
	}

	e.clk.Advance(5 * time.Second)
	start = time.Now()
	e.poll() // all stable now: 100 incremental pages, 100,000 created
	t.Logf("incremental poll sending 100,000 files: %s", time.Since(start))
	ps = e.srv.takePages()
	if len(ps) != 100 || !ps[0].Incremental || ps[0].Stable != PageSize {
		t.Fatalf("incremental pages = %d, first %+v", len(ps), ps[0])
	}
	if evs := e.srv.takeEvents(); len(evs) != 100_000 {
		t.Fatalf("%d events, want 100,000", len(evs))
	}

	start = time.Now()
	e.poll() // nothing changed: a scan and no request
	t.Logf("idle poll of 100,000 files: %s", time.Since(start))
	if ps := e.srv.takePages(); len(ps) != 0 {
		t.Fatalf("idle poll sent %d pages", len(ps))
	}
}

// benchWatch is a watcher on a 100,000-file tree whose server only reads
// the bodies.
func benchWatch(b *testing.B) *watch {
	b.Helper()
	dir := bigTempDir(b)
	makeTree(b, dir, 100_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"records":[]}`)
	}))
	b.Cleanup(srv.Close)
	c := testConfig(dir)
	w, err := newWatch(c, newClient(b, srv.URL), clock.NewFake(t0.Add(time.Hour)), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	return w
}

// BenchmarkScan100k: one walk of 100,000 files.
func BenchmarkScan100k(b *testing.B) {
	w := benchWatch(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := w.sc.run(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFullPass100k: one full pass over 100,000 stable files: walk,
// 100 pages of JSON, HTTP to a server that reads them.
func BenchmarkFullPass100k(b *testing.B) {
	w := benchWatch(b)
	ctx := context.Background()
	clk := w.clock.(*clock.Fake)
	if err := w.pollOnce(ctx); err != nil {
		b.Fatal(err)
	}
	clk.Advance(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		w.fullDue = true
		if err := w.pollOnce(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdlePoll100k: the steady state, a poll that finds nothing new.
func BenchmarkIdlePoll100k(b *testing.B) {
	w := benchWatch(b)
	w.cfg.FullPassEvery = 1 << 30
	ctx := context.Background()
	clk := w.clock.(*clock.Fake)
	if err := w.pollOnce(ctx); err != nil {
		b.Fatal(err)
	}
	clk.Advance(time.Minute)
	if err := w.pollOnce(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.pollOnce(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
