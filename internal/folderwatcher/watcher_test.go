package folderwatcher

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/trigger"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the fake clock's start.
var t0 = time.Date(2026, 11, 25, 2, 0, 0, 0, time.UTC)

// env is one watcher on a temp dir, talking to a fake server, polled by
// hand under a fake clock.
type env struct {
	t   *testing.T
	ctx context.Context
	dir string
	srv *fakeServer
	cl  *client.Client
	clk *clock.Fake
	w   *watch
}

func testConfig(dir string) Config {
	return Config{
		Name: "inbox", Path: dir, Recursive: true, StableFor: 5 * time.Second,
		On: map[string]Action{
			EventCreated: {Template: "ingest", Args: map[string]any{"path": "${{ event.path }}"}},
			EventUpdated: {Template: "ingest", Args: map[string]any{"path": "${{ event.path }}"}},
			EventDeleted: {Template: "forget", Args: map[string]any{"path": "${{ event.path }}"}},
		},
	}
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newClient(t testing.TB, url string) *client.Client {
	cl, err := client.New(client.Config{URLs: []string{url}, Deadline: 5 * time.Second, Backoff: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func setup(t *testing.T, mut func(c *Config)) *env {
	t.Helper()
	e := &env{t: t, ctx: t.Context(), dir: t.TempDir(), srv: newFakeServer(t), clk: clock.NewFake(t0)}
	e.cl = newClient(t, e.srv.srv.URL)
	c := testConfig(e.dir)
	if mut != nil {
		mut(&c)
	}
	e.dir = c.Path
	wr, err := New(Options{Client: e.cl, Watchers: []Config{c}, Clock: e.clk, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	e.w = wr.watches[0]
	return e
}

// write writes content to rel with modification time mt.
func (e *env) write(rel, content string, mt time.Time) {
	e.t.Helper()
	p := filepath.Join(e.dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Chtimes(p, mt, mt); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) remove(rel string) {
	e.t.Helper()
	if err := os.RemoveAll(filepath.Join(e.dir, filepath.FromSlash(rel))); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) poll() {
	e.t.Helper()
	if err := e.w.pollOnce(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// settle lets stable_for pass and polls.
func (e *env) settle() {
	e.t.Helper()
	e.clk.Advance(e.w.cfg.StableFor)
	e.poll()
}

func (e *env) expectEvents(want ...string) {
	e.t.Helper()
	got := e.srv.takeEvents()
	if !slices.Equal(got, want) {
		e.t.Fatalf("events = %q, want %q", got, want)
	}
}

// expectNoDeletes fails when a page since the last call carried a Deleted
// item or a Complete.
func (e *env) expectNoDeletesNorComplete() {
	e.t.Helper()
	for _, p := range e.srv.takePages() {
		if p.Deleted > 0 || p.Complete {
			e.t.Fatalf("page reports deletions: %+v", p)
		}
	}
}

var mt1 = time.Date(2026, 11, 24, 10, 0, 0, 123456789, time.UTC)

func TestCreatedUpdatedDeleted(t *testing.T) {
	e := setup(t, nil)
	e.poll() // empty folder: one complete empty pass
	ps := e.srv.takePages()
	if len(ps) != 1 || !ps[0].Complete || ps[0].Items != 0 || ps[0].Incremental {
		t.Fatalf("first pages = %s", describe(ps))
	}

	e.write("a.wav", "aaaa", mt1)
	e.write("sub/b.wav", "bb", mt1)
	e.poll()
	e.expectEvents() // not stable yet
	e.clk.Advance(4 * time.Second)
	e.poll()
	e.expectEvents()
	e.clk.Advance(time.Second)
	e.poll()
	e.expectEvents("created a.wav", "created sub/b.wav")
	e.poll()
	e.expectEvents() // acknowledged: nothing sent again
	if ps := e.srv.takePages(); len(ps) != 1 || ps[0].Stable != 2 {
		t.Fatalf("pages = %s, want one page of the two created files", describe(ps))
	}

	e.write("a.wav", "aaaaaaaa", mt1.Add(time.Minute))
	e.poll()
	e.expectEvents()
	e.settle()
	e.expectEvents("updated a.wav")

	e.remove("sub/b.wav")
	e.srv.takePages()
	e.srv.keepBodies(true)
	e.poll()
	e.expectEvents("deleted sub/b.wav")
	ps = e.srv.takePages()
	if len(ps) != 1 || ps[0].Deleted != 1 {
		t.Fatalf("pages = %s", describe(ps))
	}
	it := ps[0].Obs.Items[0]
	if it.Key != "sub/b.wav" || it.Fingerprint != fmt.Sprintf("2:%d", mt1.UnixNano()) || it.Data["path"] != filepath.Join(e.dir, "sub", "b.wav") {
		t.Fatalf("deleted item = %+v", it)
	}
	e.srv.keepBodies(false)
	if got := e.srv.mirrorKeys("inbox"); !slices.Equal(got, []string{"a.wav"}) {
		t.Fatalf("mirror = %q", got)
	}
	// A file written and removed between polls before it was stable:
	// nothing starts (the server ignores a Deleted key it never stored).
	e.write("tmp.wav", "x", mt1)
	e.poll()
	e.remove("tmp.wav")
	e.poll()
	e.expectEvents()
}

func TestEventData(t *testing.T) {
	e := setup(t, nil)
	e.write("news/item 1.wav", "12345", mt1)
	e.poll()
	e.settle()
	e.srv.mu.Lock()
	data := e.srv.data
	e.srv.mu.Unlock()
	if len(data) != 1 {
		t.Fatalf("data = %v", data)
	}
	d := data[0]
	want := map[string]any{
		"path":    filepath.Join(e.dir, "news", "item 1.wav"),
		"rel":     "news/item 1.wav",
		"rel_dir": "news",
		"name":    "item 1.wav",
		"dir":     filepath.Join(e.dir, "news"),
		"size":    float64(5), // through JSON
		"mtime":   "2026-11-24T10:00:00.123456789Z",
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("data[%s] = %v, want %v", k, d[k], v)
		}
	}
	if _, ok := d["event"]; ok {
		t.Errorf("data has event: the server fills it")
	}
	// The wire fingerprint is size:mtimeUnixNano.
	e.srv.mu.Lock()
	fp := e.srv.mirror["inbox"]["news/item 1.wav"].fp
	e.srv.mu.Unlock()
	if want := fmt.Sprintf("5:%d", mt1.UnixNano()); fp != want {
		t.Fatalf("fingerprint = %q, want %q", fp, want)
	}
}

func TestSlowWriteStartsOnceWhenStable(t *testing.T) {
	e := setup(t, nil)
	e.poll()
	p := filepath.Join(e.dir, "big.mxf")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range 10 {
		if _, err := f.WriteString(strings.Repeat("x", 1000)); err != nil {
			t.Fatal(err)
		}
		// The mtime moves with each chunk, as it does on a real copy.
		mt := mt1.Add(time.Duration(i) * time.Second)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(3 * time.Second) // less than stable_for between chunks
		e.poll()
		e.expectEvents()
		if i == 5 {
			// A full pass in the middle of the copy lists it as
			// unstable: present, not compared.
			e.w.fullDue = true
			e.poll()
			ps := e.srv.takePages()
			last := ps[len(ps)-1]
			if !last.Complete || last.Unstable != 1 || last.Stable != 0 {
				t.Fatalf("full pass during the copy = %s", describe(ps))
			}
		}
	}
	e.settle()
	e.expectEvents("created big.mxf")
	e.settle()
	e.expectEvents()
}

func TestDoneMarker(t *testing.T) {
	e := setup(t, func(c *Config) { c.StableFor, c.DoneMarker, c.Include = 0, ".done", []string{"*.wav"} })
	e.poll()
	e.write("a.wav", "a", mt1)
	e.poll()
	e.clk.Advance(time.Hour)
	e.poll()
	e.expectEvents() // no marker, no event however long
	e.write("a.wav.done", "", mt1)
	e.poll()
	e.expectEvents("created a.wav")
	e.w.fullDue = true
	e.poll()
	e.expectEvents()
	if got := e.srv.mirrorKeys("inbox"); !slices.Equal(got, []string{"a.wav"}) {
		t.Fatalf("mirror = %q: the marker is never an item", got)
	}
	// With stable_for as well, both must hold.
	e2 := setup(t, func(c *Config) { c.DoneMarker = ".done" })
	e2.write("b.wav", "b", mt1)
	e2.write("b.wav.done", "", mt1)
	e2.poll()
	e2.expectEvents()
	e2.settle()
	e2.expectEvents("created b.wav")
}

func TestMinAge(t *testing.T) {
	e := setup(t, func(c *Config) { c.StableFor, c.MinAge = 0, time.Minute })
	e.write("old.wav", "o", t0.Add(-2*time.Minute))
	e.write("new.wav", "n", t0.Add(-10*time.Second))
	e.poll()
	e.expectEvents("created old.wav")
	e.clk.Advance(49 * time.Second)
	e.poll()
	e.expectEvents()
	if due := e.w.nextDue; !due.Equal(t0.Add(50 * time.Second)) {
		t.Fatalf("nextDue = %v, want when new.wav is a minute old", due)
	}
	e.clk.Advance(time.Second)
	e.poll()
	e.expectEvents("created new.wav")
}

func TestRenameIntoFolderAndWithin(t *testing.T) {
	e := setup(t, nil)
	outside := t.TempDir()
	src := filepath.Join(outside, "clip.wav")
	if err := os.WriteFile(src, []byte("clip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(src, mt1, mt1); err != nil {
		t.Fatal(err)
	}
	e.poll()
	if err := os.Rename(src, filepath.Join(e.dir, "clip.wav")); err != nil {
		t.Fatal(err)
	}
	e.poll()
	e.settle()
	e.expectEvents("created clip.wav")
	if err := os.Rename(filepath.Join(e.dir, "clip.wav"), filepath.Join(e.dir, "done.wav")); err != nil {
		t.Fatal(err)
	}
	e.poll()
	e.expectEvents("deleted clip.wav") // the new name waits stable_for
	e.settle()
	e.expectEvents("created done.wav")
}

func TestRootRemovedAndRestored(t *testing.T) {
	e := setup(t, nil)
	for i := range 5 {
		e.write(fmt.Sprintf("d/f%d.wav", i), "x", mt1)
	}
	e.poll()
	e.settle()
	e.expectEvents("created d/f0.wav", "created d/f1.wav", "created d/f2.wav", "created d/f3.wav", "created d/f4.wav")
	if got := e.srv.takeErrors(); !slices.Equal(got, []string{""}) {
		t.Fatalf("errors = %q, want the first poll to clear any old error", got)
	}
	e.srv.takePages()

	aside := filepath.Join(t.TempDir(), "aside")
	if err := os.Rename(e.dir, aside); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		e.clk.Advance(time.Minute)
		e.w.sinceFull = 100 // a full pass would be due
		e.poll()
	}
	if got, want := e.srv.takeErrors(), []string{"path " + e.dir + ": no such directory"}; !slices.Equal(got, want) {
		t.Fatalf("errors = %q, want %q once", got, want)
	}
	if ps := e.srv.takePages(); len(ps) != 0 {
		t.Fatalf("pages sent while the folder was gone: %s", describe(ps))
	}

	if err := os.Rename(aside, e.dir); err != nil {
		t.Fatal(err)
	}
	e.poll()
	if got := e.srv.takeErrors(); !slices.Equal(got, []string{""}) {
		t.Fatalf("errors = %q, want the error cleared", got)
	}
	ps := e.srv.takePages()
	if len(ps) != 1 || !ps[0].Complete || ps[0].Stable != 5 || ps[0].Deleted != 0 {
		t.Fatalf("pages after the folder came back = %s, want one complete pass of the 5 files", describe(ps))
	}
	e.expectEvents() // no storm
	if got := e.srv.mirrorKeys("inbox"); len(got) != 5 {
		t.Fatalf("mirror = %q", got)
	}
	// Folder replaced by a file: also an error, nothing sent.
	if err := os.Rename(e.dir, aside); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.dir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.poll()
	if got, want := e.srv.takeErrors(), []string{"path " + e.dir + ": not a directory"}; !slices.Equal(got, want) {
		t.Fatalf("errors = %q, want %q", got, want)
	}
	e.expectNoDeletesNorComplete()
	if err := os.Remove(e.dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(aside, e.dir); err != nil {
		t.Fatal(err)
	}
}

// faults makes entries unreadable, as a permission problem or a flaky
// share would.
type faults struct {
	mu  sync.Mutex
	bad map[string]error
}

func (f *faults) set(rel string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bad == nil {
		f.bad = map[string]error{}
	}
	if err == nil {
		delete(f.bad, rel)
	} else {
		f.bad[rel] = err
	}
}

func (f *faults) check(rel string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.bad[rel]
}

func TestUnreadableSubdirectoryReportsNoDeletions(t *testing.T) {
	e := setup(t, nil)
	var fl faults
	e.w.sc.fault = fl.check
	for _, rel := range []string{"ok/a.wav", "ok/b.wav", "locked/c.wav", "locked/deep/d.wav"} {
		e.write(rel, "x", mt1)
	}
	e.poll()
	e.settle()
	e.expectEvents("created locked/c.wav", "created locked/deep/d.wav", "created ok/a.wav", "created ok/b.wav")
	e.srv.takePages()

	fl.set("locked", &fs.PathError{Op: "open", Path: filepath.Join(e.dir, "locked"), Err: fs.ErrPermission})
	e.remove("ok/b.wav") // a real deletion elsewhere is still reported
	e.poll()
	e.expectEvents("deleted ok/b.wav")
	e.w.fullDue = true
	e.poll()
	e.clk.Advance(time.Hour)
	e.poll()
	e.expectEvents()
	for _, p := range e.srv.takePages() {
		if p.Complete {
			t.Fatalf("a pass over an incomplete scan is Complete: %+v", p)
		}
		if p.Deleted > 1 {
			t.Fatalf("deletions under the unreadable directory: %+v", p)
		}
	}
	// An unreadable file is kept as it was too.
	fl.set("ok/a.wav", fs.ErrPermission)
	e.poll()
	e.expectEvents()
	e.expectNoDeletesNorComplete()

	fl.set("locked", nil)
	fl.set("ok/a.wav", nil)
	e.remove("locked/deep/d.wav")
	e.w.fullDue = true
	e.poll()
	e.expectEvents("deleted locked/deep/d.wav")
	ps := e.srv.takePages()
	if last := ps[len(ps)-1]; !last.Complete {
		t.Fatalf("pages = %s, want a complete pass once readable", describe(ps))
	}

	// The root unreadable: an error, nothing sent.
	fl.set(".", fs.ErrPermission)
	e.poll()
	if got, want := e.srv.takeErrors(), "path "+e.dir+": permission denied"; !slices.Contains(got, want) {
		t.Fatalf("errors = %q, want %q", got, want)
	}
	if ps := e.srv.takePages(); len(ps) != 0 {
		t.Fatalf("pages sent with the root unreadable: %s", describe(ps))
	}
}

func TestIncludeExclude(t *testing.T) {
	e := setup(t, func(c *Config) {
		c.Include = []string{"*.wav", "video/*.mxf"}
		c.Exclude = []string{"*.part", "tmp", "skip/*.wav"}
	})
	for _, rel := range []string{
		"a.wav", "a.mp3", "a.wav.part", "x/b.wav", "video/c.mxf", "video/deep/d.mxf",
		"tmp/e.wav", "x/tmp/f.wav", "skip/g.wav", "skip/deeper/h.wav",
	} {
		e.write(rel, "x", mt1)
	}
	e.poll()
	e.settle()
	e.expectEvents("created a.wav", "created skip/deeper/h.wav", "created video/c.mxf", "created x/b.wav")

	ne := setup(t, func(c *Config) { c.Recursive = false })
	ne.write("top.wav", "x", mt1)
	ne.write("sub/low.wav", "x", mt1)
	ne.poll()
	ne.settle()
	ne.expectEvents("created top.wav")
}

func TestSymlinks(t *testing.T) {
	e := setup(t, nil)
	target := filepath.Join(t.TempDir(), "real.wav")
	if err := os.WriteFile(target, []byte("real"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(e.dir, "link.wav")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(target), filepath.Join(e.dir, "linkdir")); err != nil {
		t.Fatal(err)
	}
	e.poll()
	e.settle()
	e.expectEvents("created link.wav")

	// A watched path that is itself a link is followed.
	l := setup(t, nil)
	l.write("in.wav", "x", mt1)
	link := filepath.Join(t.TempDir(), "inbox")
	if err := os.Symlink(l.dir, link); err != nil {
		t.Fatal(err)
	}
	c := testConfig(link)
	w, err := newWatch(c, l.cl, l.clk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	l.w = w
	l.poll()
	l.settle()
	l.expectEvents("created in.wav")
}

func TestServerFailureResends(t *testing.T) {
	e := setup(t, nil)
	e.write("a.wav", "a", mt1)
	e.poll()
	e.clk.Advance(5 * time.Second)
	e.srv.failNext(1)
	if err := e.w.pollOnce(e.ctx); err == nil {
		t.Fatal("poll with a failing server: no error")
	}
	e.expectEvents()
	e.poll()
	e.expectEvents("created a.wav")

	// A full pass cut short starts again with a new pass id.
	e.w.fullDue = true
	e.srv.failNext(1)
	if err := e.w.pollOnce(e.ctx); err == nil {
		t.Fatal("poll with a failing server: no error")
	}
	if !e.w.fullDue {
		t.Fatal("a failed pass is not due again")
	}
	e.poll()
	ps := e.srv.takePages()
	if last := ps[len(ps)-1]; !last.Complete || last.Stable != 1 {
		t.Fatalf("pages = %s", describe(ps))
	}
	e.expectEvents()
}

func TestFullPassCadenceAndFlags(t *testing.T) {
	e := setup(t, func(c *Config) { c.FullPassEvery, c.FirstStart, c.DryRun = 3, FirstStartBaseline, true })
	e.write("a.wav", "a", mt1)
	var kinds []string
	for range 7 {
		e.poll()
		ps := e.srv.takePages()
		k := "-"
		for _, p := range ps {
			if p.FirstStart != FirstStartBaseline || !p.DryRun {
				t.Fatalf("page flags = %+v", p)
			}
			if !p.Incremental {
				k = "full"
			}
		}
		kinds = append(kinds, k)
	}
	if want := []string{"full", "-", "-", "full", "-", "-", "full"}; !slices.Equal(kinds, want) {
		t.Fatalf("passes = %q, want %q", kinds, want)
	}
}

func TestConcurrentWatchersStartOnce(t *testing.T) {
	e := setup(t, nil)
	w2, err := newWatch(e.w.cfg, e.cl, e.clk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	e.write("a.wav", "a", mt1)
	e.poll()
	if err := w2.pollOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(5 * time.Second)
	e.poll()
	if err := w2.pollOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.expectEvents("created a.wav")
	e.remove("a.wav")
	e.poll()
	if err := w2.pollOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.expectEvents("deleted a.wav")
}

// A takeover: a fresh copy with an empty memory waits stable_for again and
// starts nothing for files the mirror knows, but finds what changed while
// no copy ran.
func TestTakeoverStartsNothingTwice(t *testing.T) {
	e := setup(t, nil)
	e.write("keep.wav", "k", mt1)
	e.write("gone.wav", "g", mt1)
	e.write("changed.wav", "c", mt1)
	e.poll()
	e.settle()
	e.expectEvents("created changed.wav", "created gone.wav", "created keep.wav")

	e.remove("gone.wav")
	e.write("changed.wav", "cc", mt1.Add(time.Hour))
	e.write("new.wav", "n", mt1)
	w2, err := newWatch(e.w.cfg, e.cl, e.clk, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	e.w = w2
	e.poll() // full pass: all unstable, gone.wav not listed
	e.expectEvents("deleted gone.wav")
	e.settle()
	e.expectEvents("updated changed.wav", "created new.wav")
}

func TestRunLoop(t *testing.T) {
	srv := newFakeServer(t)
	dir := t.TempDir()
	c := testConfig(dir)
	c.Poll, c.StableFor = 50*time.Millisecond, 20*time.Millisecond
	cl := newClient(t, srv.srv.URL)
	for _, mode := range []string{trigger.Concurrent, trigger.Standby} {
		t.Run(mode, func(t *testing.T) {
			w, err := New(Options{Client: cl, Watchers: []Config{c}, Log: testLog(t), Mode: trigger.Mode{Mode: mode}})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- w.Run(ctx) }()
			name := mode + ".wav"
			if err := os.WriteFile(filepath.Join(dir, name), []byte(mode), 0o644); err != nil {
				t.Fatal(err)
			}
			deadline := time.After(10 * time.Second)
			for ev := ""; ev != "created "+name; {
				select {
				case <-deadline:
					t.Fatal("no created event within 10s")
				case ev = <-srv.startedCh:
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.leases == 0 {
		t.Fatal("standby mode took no lease")
	}
}

func TestNewRefusesDuplicatesAndBadMode(t *testing.T) {
	srv := newFakeServer(t)
	cl := newClient(t, srv.srv.URL)
	c := testConfig(t.TempDir())
	_, err := New(Options{Client: cl, Watchers: []Config{c, c}})
	if err == nil || !strings.Contains(err.Error(), "folder_watchers[inbox].name: used by another folder watcher") {
		t.Fatalf("err = %v", err)
	}
	_, err = New(Options{Client: cl, Watchers: []Config{c}, Mode: trigger.Mode{Mode: "hot"}})
	if err == nil || !strings.Contains(err.Error(), "mode") {
		t.Fatalf("err = %v", err)
	}
	var ce *ConfigError
	bad := c
	bad.Path = filepath.Join(c.Path, "nope")
	_, err = New(Options{Client: cl, Watchers: []Config{bad}})
	if !errors.As(err, &ce) || ce.Field != "path" {
		t.Fatalf("err = %v", err)
	}
}
