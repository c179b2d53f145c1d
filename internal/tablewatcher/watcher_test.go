package tablewatcher

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/trigger"
)

// testPageSize makes 200 rows span many pages, and pages end inside runs
// of rows that share one version.
const testPageSize = 7

var t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// musicConfig watches the music table of e.
func musicConfig(e engine) Config {
	return Config{
		Name:          "music",
		DSN:           e.dsn,
		Table:         "music",
		Key:           []string{"grp", "id"},
		VersionColumn: "modified",
		On: map[string]Action{
			EventCreated: {Template: "new-entry", Args: map[string]any{"id": "${{ row.id }}"}},
			EventUpdated: {Template: "changed-entry", Args: map[string]any{"id": "${{ row.id }}"}, Priority: 3},
			EventDeleted: {Template: "forget", Args: map[string]any{"key": "${{ row.grp + '/' + string(row.id) }}"}},
		},
	}
}

// newTestWatcher makes a Watcher of one config against f, with small pages.
func newTestWatcher(t *testing.T, f *fakeServer, cfg Config, mode trigger.Mode) (*Watcher, *watch) {
	t.Helper()
	w, err := New(Options{Client: f.client(t), Watchers: []Config{cfg}, Mode: mode,
		Log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	x := w.watches[0]
	x.pageSize = testPageSize
	return w, x
}

// pollAndCheck runs one poll and checks its kind (full pass or
// incremental) and the event counts after it.
func pollAndCheck(t *testing.T, f *fakeServer, x *watch, wantFull bool, want map[string]int) []model.Observation {
	t.Helper()
	_, _, before, _ := f.snapshot(x.cfg.Name)
	if err := x.pollOnce(context.Background()); err != nil {
		t.Fatalf("poll: %v", err)
	}
	events, _, obs, _ := f.snapshot(x.cfg.Name)
	sent := obs[len(before):]
	for _, o := range sent {
		if full := o.Pass != ""; full != wantFull || o.Incremental == wantFull {
			t.Errorf("observation pass %q incremental %v; want a full pass: %v", o.Pass, o.Incremental, wantFull)
		}
	}
	if wantFull && (len(sent) < 2 || !sent[len(sent)-1].Complete || len(sent[0].Items) != 0) {
		t.Errorf("full pass sent %d pages; want an empty opening page first and a complete page last", len(sent))
	}
	for k, v := range want {
		if events[k] != v {
			t.Errorf("%s: %d events; want %d (all: %v)", k, events[k], v, events)
		}
	}
	for k, v := range events {
		if _, ok := want[k]; !ok && v != 0 {
			t.Errorf("%s: %d unexpected events", k, v)
		}
	}
	return sent
}

var groups = []string{"a", "B", "c"} // mixed case: MySQL compares by collation

func insert(t *testing.T, e engine, from, to int, category string, modified func(i int) time.Time) {
	t.Helper()
	for i := from; i < to; i++ {
		e.exec(t, "INSERT INTO music (grp, id, title, category, modified) VALUES (?, ?, ?, ?, ?)",
			groups[i%3], i, fmt.Sprintf("title %d", i), category, e.ts(modified(i)))
	}
}

func at(d time.Duration) func(int) time.Time { return func(int) time.Time { return t0.Add(d) } }

// TestWatchVersioned inserts 200 rows, updates 50 and deletes 30 under a
// watcher with a version column, and checks that exactly those events
// come out, then that a new watcher continues from the stored cursor.
func TestWatchVersioned(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		e.createMusic(t)
		// 10 rows exist when the watcher first starts: a baseline.
		insert(t, e, 0, 10, "news", at(0))
		f := newFakeServer(t)
		cfg := musicConfig(e)
		cfg.FullPassEvery = 4
		_, x := newTestWatcher(t, f, cfg, trigger.Mode{})

		pollAndCheck(t, f, x, true, map[string]int{"baseline": 10})
		if x.st.cursor == nil {
			t.Fatal("no cursor after the first pass")
		}

		// 200 new rows: the first 3 at the cursor's own time (committed
		// after the pass read it: found because polls read >= cursor),
		// the rest in runs of 20 sharing one time.
		insert(t, e, 10, 210, "news", func(i int) time.Time {
			if i < 13 {
				return t0
			}
			return t0.Add(time.Duration(1+(i-13)/20) * time.Second)
		})
		pollAndCheck(t, f, x, false, map[string]int{"baseline": 10, EventCreated: 200})

		// 50 rows updated by one statement: one time for all, far more
		// rows than a page.
		t2 := t0.Add(time.Hour)
		e.exec(t, "UPDATE music SET title = 'new', modified = ? WHERE id >= ? AND id < ?", e.ts(t2), 100, 150)
		pollAndCheck(t, f, x, false, map[string]int{"baseline": 10, EventCreated: 200, EventUpdated: 50})

		// Nothing changed: the rows at the cursor are read again but not
		// sent again.
		if sent := pollAndCheck(t, f, x, false, map[string]int{"baseline": 10, EventCreated: 200, EventUpdated: 50}); len(sent) != 0 {
			t.Errorf("idle poll sent %d observations", len(sent))
		}

		// 30 deletions, found by the full pass (every 4th poll).
		e.exec(t, "DELETE FROM music WHERE id >= ? AND id < ?", 20, 50)
		pollAndCheck(t, f, x, true, map[string]int{"baseline": 10, EventCreated: 200, EventUpdated: 50, EventDeleted: 30})

		_, mirror, obs, _ := f.snapshot("music")
		if len(mirror) != 180 {
			t.Errorf("mirror has %d entries; want 180", len(mirror))
		}
		// Keys are the canonical JSON of the key values; the fingerprint
		// is the version, a time in RFC 3339 UTC in every engine.
		if fp := mirror[`["a",120]`]; fp != "2026-11-25T11:00:00Z" {
			t.Errorf(`mirror["a",120] = %q; want the modified time`, fp)
		}
		// baseline covers the first pass only: after it an emptied table
		// refilled is no first start.
		for i, o := range obs {
			want := FirstStartFire
			if o.Pass == obs[0].Pass {
				want = FirstStartBaseline
			}
			if o.FirstStart != want {
				t.Errorf("observation %d: first_start %q; want %q", i, o.FirstStart, want)
			}
		}
		if got := obs[0].On[EventCreated].Args["id"]; got != "${{ row.id }}" {
			t.Errorf("on.created.args.id sent as %v; want the expression as written", got)
		}
		checkData(t, f, `["B",100]`, map[string]any{"grp": "B", "id": 100.0, "title": "new", "category": "news", "modified": "2026-11-25T11:00:00Z"})

		// A new copy (a restart, a standby taking over) continues from
		// the stored cursor: an incremental poll that sends the rows at
		// the cursor once and the new changes, not the table.
		_, x2 := newTestWatcher(t, f, cfg, trigger.Mode{})
		t3 := t2.Add(time.Minute)
		insert(t, e, 300, 305, "news", at(time.Hour+time.Minute))
		e.exec(t, "UPDATE music SET title = 'newer', modified = ? WHERE id IN (?, ?)", e.ts(t3), 5, 6)
		sent := pollAndCheck(t, f, x2, false, map[string]int{"baseline": 10, EventCreated: 205, EventUpdated: 52, EventDeleted: 30})
		items := 0
		for _, o := range sent {
			items += len(o.Items)
		}
		if want := 50 + 7; items != want {
			t.Errorf("restarted watcher sent %d items; want %d (the 50 rows at the cursor, 7 changes)", items, want)
		}
	})
}

// TestWatchLateCommit: a row committed with a version below the cursor
// (its transaction took its time early and committed late) is not seen by
// incremental polls; the next full pass finds it.
func TestWatchLateCommit(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		e.createMusic(t)
		f := newFakeServer(t)
		cfg := musicConfig(e)
		cfg.FullPassEvery = 3
		_, x := newTestWatcher(t, f, cfg, trigger.Mode{})
		pollAndCheck(t, f, x, true, map[string]int{})
		insert(t, e, 0, 3, "news", at(time.Hour))
		pollAndCheck(t, f, x, false, map[string]int{EventCreated: 3})
		insert(t, e, 3, 4, "news", at(time.Minute)) // below the cursor
		pollAndCheck(t, f, x, false, map[string]int{EventCreated: 3})
		pollAndCheck(t, f, x, true, map[string]int{EventCreated: 4})
	})
}

// checkData compares the row data the server has for key.
func checkData(t *testing.T, f *fakeServer, key string, want map[string]any) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	got := f.triggers["music"].mirror[key].data
	if !maps.Equal(got, want) {
		t.Errorf("data of %s = %v; want %v", key, got, want)
	}
}

// TestWatchWithoutVersion: without a version column every poll is a full
// pass and fingerprints hash the rows.
func TestWatchWithoutVersion(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		e.createMusic(t)
		f := newFakeServer(t)
		cfg := musicConfig(e)
		cfg.VersionColumn = ""
		cfg.Columns = []string{"title"} // changes elsewhere do not count
		cfg.FirstStart = FirstStartFire
		_, x := newTestWatcher(t, f, cfg, trigger.Mode{})

		pollAndCheck(t, f, x, true, map[string]int{})
		insert(t, e, 0, 200, "news", at(0))
		pollAndCheck(t, f, x, true, map[string]int{EventCreated: 200})
		e.exec(t, "UPDATE music SET title = 'new' WHERE id >= ? AND id < ?", 100, 150)
		e.exec(t, "UPDATE music SET category = 'sport'") // not read: no event
		pollAndCheck(t, f, x, true, map[string]int{EventCreated: 200, EventUpdated: 50})
		e.exec(t, "DELETE FROM music WHERE id >= ? AND id < ?", 0, 30)
		pollAndCheck(t, f, x, true, map[string]int{EventCreated: 200, EventUpdated: 50, EventDeleted: 30})
		pollAndCheck(t, f, x, true, map[string]int{EventCreated: 200, EventUpdated: 50, EventDeleted: 30})

		_, mirror, _, _ := f.snapshot("music")
		if fp := mirror[`["a",30]`]; len(fp) != 64 {
			t.Errorf("fingerprint %q; want a sha256", fp)
		}
		checkData(t, f, `["a",120]`, map[string]any{"grp": "a", "id": 120.0, "title": "new"})
	})
}

// TestWatchFilter: a row that does not match the filter is absent; one
// leaving it is deleted at once, one entering it is created.
func TestWatchFilter(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		e.createMusic(t)
		f := newFakeServer(t)
		cfg := musicConfig(e)
		cfg.Filter = "row.category == 'news'"
		cfg.Columns = []string{"title"} // the filter's column is read anyway
		cfg.FullPassEvery = 5
		_, x := newTestWatcher(t, f, cfg, trigger.Mode{})

		pollAndCheck(t, f, x, true, map[string]int{}) // empty table: no cursor yet
		insert(t, e, 0, 6, "news", at(time.Second))
		insert(t, e, 6, 10, "sport", at(time.Second))
		pollAndCheck(t, f, x, false, map[string]int{EventCreated: 6})
		e.exec(t, "UPDATE music SET category = 'sport', modified = ? WHERE id IN (?, ?)", e.ts(t0.Add(2*time.Second)), 0, 1)
		pollAndCheck(t, f, x, false, map[string]int{EventCreated: 6, EventDeleted: 2})
		e.exec(t, "UPDATE music SET category = 'news', modified = ? WHERE id IN (?, ?, ?)", e.ts(t0.Add(3*time.Second)), 6, 7, 8)
		pollAndCheck(t, f, x, false, map[string]int{EventCreated: 9, EventDeleted: 2})
		pollAndCheck(t, f, x, false, map[string]int{EventCreated: 9, EventDeleted: 2})
		pollAndCheck(t, f, x, true, map[string]int{EventCreated: 9, EventDeleted: 2})

		_, mirror, _, _ := f.snapshot("music")
		if len(mirror) != 7 {
			t.Errorf("mirror %v; want the 7 news rows", mirror)
		}
	})
}

// TestWatchFilterError: a row the filter fails on (here: len of a NULL)
// counts as not matching, and the watcher goes on.
func TestWatchFilterError(t *testing.T) {
	e := openSQLite(t)
	e.createMusic(t)
	e.exec(t, "INSERT INTO music (grp, id, title, modified) VALUES ('a', 1, NULL, ?), ('a', 2, 'x', ?)", e.ts(t0), e.ts(t0))
	f := newFakeServer(t)
	cfg := musicConfig(e)
	cfg.Filter = "len(row.title) > 0"
	cfg.FirstStart = FirstStartFire
	_, x := newTestWatcher(t, f, cfg, trigger.Mode{})
	pollAndCheck(t, f, x, true, map[string]int{EventCreated: 1})
	if _, mirror, _, _ := f.snapshot("music"); len(mirror) != 1 || mirror[`["a",2]`] == "" {
		t.Errorf("mirror %v; want only the row the filter matches", mirror)
	}
	if x.filterErr == "" {
		t.Error("filter error not noted")
	}
}

// TestCheck refuses unknown tables and columns with messages naming the
// watcher, the column and the field.
func TestCheck(t *testing.T) {
	forEngines(t, func(t *testing.T, e engine) {
		e.createMusic(t)
		f := newFakeServer(t)
		schema := map[dialect]string{postgres: "public", sqlite: "main"}[e.d]
		if e.d == mariadb {
			if err := e.db.QueryRow("SELECT DATABASE()").Scan(&schema); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name   string
			modify func(c *Config)
			want   string // "" accepted
		}{
			{"good", func(c *Config) {}, ""},
			{"schema-qualified", func(c *Config) { c.Table = schema + ".music" }, ""},
			{"unknown table", func(c *Config) { c.Table = "musik" }, "table_watchers[music]: table musik not found"},
			{"unknown schema", func(c *Config) { c.Table = "nosuch.music" }, "table_watchers[music]: table nosuch.music not found"},
			{"unknown version column", func(c *Config) { c.VersionColumn = "modifed" },
				`table_watchers[music]: column "modifed" not found in table music (version_column)`},
			{"unknown key column", func(c *Config) { c.Key = []string{"grp", "nr"} },
				`table_watchers[music]: column "nr" not found in table music (key)`},
			{"unknown column", func(c *Config) { c.Columns = []string{"title", "artist"} },
				`table_watchers[music]: column "artist" not found in table music (columns)`},
			{"unknown filter column", func(c *Config) { c.Filter = "row.categroy == 'news'" },
				`table_watchers[music]: column "categroy" not found in table music (filter)`},
			{"case of names", func(c *Config) { c.Key = []string{"GRP", "id"} },
				map[dialect]string{postgres: `column "GRP" not found in table music (key)`}[e.d]},
		} {
			cfg := musicConfig(e)
			tc.modify(&cfg)
			w, _ := newTestWatcher(t, f, cfg, trigger.Mode{})
			err := w.Check(context.Background())
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("%s: %v", tc.name, err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("%s: error %v; want %q", tc.name, err, tc.want)
			}
		}
	})
}

func TestCheckMissingSQLiteFile(t *testing.T) {
	f := newFakeServer(t)
	cfg := musicConfig(engine{dsn: "sqlite:" + t.TempDir() + "/nosuch.db"})
	w, _ := newTestWatcher(t, f, cfg, trigger.Mode{})
	err := w.Check(context.Background())
	if err == nil || !strings.Contains(err.Error(), "table_watchers[music]: connect to sqlite:") {
		t.Errorf("Check of a missing file: %v; want a connect error (a watcher never creates the database)", err)
	}
}

// TestPollFailureReloadsState: a page the server refuses fails the poll;
// the next poll reads the state from the server again and succeeds.
func TestPollFailureReloadsState(t *testing.T) {
	e := openSQLite(t)
	e.createMusic(t)
	f := newFakeServer(t)
	_, x := newTestWatcher(t, f, musicConfig(e), trigger.Mode{})
	pollAndCheck(t, f, x, true, map[string]int{})
	insert(t, e, 0, 3, "news", at(time.Second))
	f.mu.Lock()
	f.reject = true
	f.mu.Unlock()
	if err := x.pollOnce(context.Background()); err == nil || x.loaded {
		t.Fatalf("poll with a refusing server: err %v, loaded %v", err, x.loaded)
	}
	f.mu.Lock()
	f.reject = false
	f.mu.Unlock()
	pollAndCheck(t, f, x, false, map[string]int{EventCreated: 3})
}

// waitPoll waits for the next poll of a running watcher.
func waitPoll(t *testing.T, polled <-chan error) error {
	t.Helper()
	select {
	case err := <-polled:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no poll within 10s")
		return nil
	}
}

// TestRun runs a watcher's loop: a missing table is reported as the
// trigger's error and polled again; once it exists, rows start workflows
// (first_start fire) and the error is cleared. Stopping is not an error.
func TestRun(t *testing.T) {
	e := openSQLite(t)
	e.exec(t, "CREATE TABLE other (id INT)") // the file exists, the table not yet
	f := newFakeServer(t)
	cfg := musicConfig(e)
	cfg.Poll = MinPoll
	cfg.FirstStart = FirstStartFire
	w, x := newTestWatcher(t, f, cfg, trigger.Mode{Mode: trigger.Concurrent})
	polled := make(chan error, 100)
	x.afterPoll = func(err error) {
		select {
		case polled <- err:
		default: // the test reads the polls it waits for
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()

	if err := waitPoll(t, polled); err == nil || !strings.Contains(err.Error(), "table music not found") {
		t.Fatalf("first poll: %v; want table not found", err)
	}
	if _, _, _, msg := f.snapshot("music"); !strings.Contains(msg, "table music not found") {
		t.Errorf("error state on the server: %q", msg)
	}
	e.createMusic(t)
	insert(t, e, 0, 5, "news", at(0))
	for {
		err := waitPoll(t, polled)
		events, _, _, msg := f.snapshot("music")
		if err == nil && events[EventCreated] == 5 && msg == "" {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
}

// TestRunStandby: in standby mode the watcher polls while it holds the
// lease trigger/<name> and gives it back when stopped.
func TestRunStandby(t *testing.T) {
	e := openSQLite(t)
	e.createMusic(t)
	insert(t, e, 0, 3, "news", at(0))
	f := newFakeServer(t)
	cfg := musicConfig(e)
	cfg.Poll = MinPoll
	w, x := newTestWatcher(t, f, cfg, trigger.Mode{Mode: trigger.Standby, TTL: 2 * time.Second, Holder: "copy-a"})
	polled := make(chan error, 100)
	x.afterPoll = func(err error) {
		select {
		case polled <- err:
		default: // the test reads the polls it waits for
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	if err := waitPoll(t, polled); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	holder := f.leases["trigger/music"]
	f.mu.Unlock()
	if holder != "copy-a" {
		t.Errorf("lease trigger/music held by %q; want copy-a", holder)
	}
	if events, _, _, _ := f.snapshot("music"); events["baseline"] != 3 {
		t.Errorf("events %v; want 3 baseline", events)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run after cancel: %v", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.released) != 1 || f.released[0] != "trigger/music" {
		t.Errorf("released %v; want trigger/music", f.released)
	}
}

// TestNewGroups: with several watchers, a standby group becomes one lease
// per watcher.
func TestNewGroups(t *testing.T) {
	f := newFakeServer(t)
	a, b := validConfig(), validConfig()
	b.Name = "jingles"
	w, err := New(Options{Client: f.client(t), Watchers: []Config{a, b}, Mode: trigger.Mode{Mode: trigger.Standby, Group: "plant"}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if g0, g1 := w.watches[0].mode.Group, w.watches[1].mode.Group; g0 != "plant/music" || g1 != "plant/jingles" {
		t.Errorf("groups %q %q", g0, g1)
	}
	if h := w.watches[0].mode.Holder; h == "" {
		t.Error("no default holder")
	}
	if _, err := New(Options{Client: f.client(t), Watchers: []Config{a, a}}); err == nil {
		t.Error("New accepted two watchers with one name")
	}
}
