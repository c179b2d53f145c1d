package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// Engine-specific trigger tests: several *Store on one schema (several
// servers), round trips per watcher page, deadlock retries, query plans
// and notifications. The semantics are the conformance suite's
// (storetest.RunTrigger).

// TestTriggerDoAcrossStores has 20 goroutines on 5 servers increment a
// counter in one trigger's state, starting before the trigger exists: the
// row lock must serialize them across pools (no lost update), without a
// single deadlock to retry.
func TestTriggerDoAcrossStores(t *testing.T) {
	t.Parallel()
	ss := stores(t, 5)
	const goroutines, increments = 20, 10
	now := time.Now()
	var wg sync.WaitGroup
	for g := range goroutines {
		s := ss[g%len(ss)]
		wg.Go(func() {
			for i := range increments {
				err := s.TriggerDo(t.Context(), "counter", model.TriggerSchedule, now, func(tx store.TriggerTx) error {
					var st struct{ N int }
					if err := json.Unmarshal(tx.Trigger().State, &st); err != nil {
						return err
					}
					st.N++
					b, _ := json.Marshal(st)
					return tx.SetState(b)
				})
				if err != nil {
					t.Errorf("goroutine %d, increment %d: %v", g, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	got, err := ss[0].TriggerGet(t.Context(), "counter")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`{"N":%d}`, goroutines*increments); string(got.State) != want {
		t.Errorf("state %s, want %s", got.State, want)
	}
	for i, s := range ss {
		if n := s.retries.Load(); n != 0 {
			t.Errorf("store %d retried %d transactions, want 0", i, n)
		}
	}
}

// roundTrips is a pgx tracer that counts what a connection sends: one per
// statement outside a batch, one per batch.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// openTraced opens a store on a fresh schema whose connections report to
// tracer.
func openTraced(t *testing.T, tracer pgx.QueryTracer) *Store {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(newTestDB(t).schemaDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Tracer = tracer
	s, err := openConfig(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestTriggerPageRoundTrips runs what the trigger service does with one
// page of a folder watcher, at the largest page it accepts (5,000 items):
// the cost must not grow with the items. Begin, lock, MirrorGet, one write,
// finish, commit: 6.
func TestTriggerPageRoundTrips(t *testing.T) {
	t.Parallel()
	var rt roundTrips
	s := openTraced(t, &rt)
	const n = 5000
	keys := make([]string, n)
	entries := make([]store.MirrorEntry, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("/data/inbox/file-%05d.wav", i)
		entries[i] = store.MirrorEntry{Key: keys[i], Fingerprint: "size=1,mtime=1", Data: json.RawMessage(`{"size": 1}`)}
	}
	// page is one observation: MirrorGet, then a put of what is new and a
	// touch of what is known, as triggers.observer.page does.
	page := func(now time.Time) (put, touched int) {
		t.Helper()
		err := s.TriggerDo(t.Context(), "inbox", model.TriggerFolder, now, func(tx store.TriggerTx) error {
			m, err := tx.MirrorGet(keys)
			if err != nil {
				return err
			}
			var newEntries []store.MirrorEntry
			var known []string
			for i, k := range keys {
				if _, ok := m[k]; ok {
					known = append(known, k)
				} else {
					newEntries = append(newEntries, entries[i])
				}
			}
			put, touched = len(newEntries), len(known)
			if err := tx.MirrorPut(newEntries); err != nil {
				return err
			}
			if err := tx.MirrorTouch(known); err != nil {
				return err
			}
			return tx.MirrorDelete(nil)
		})
		if err != nil {
			t.Fatalf("TriggerDo: %v", err)
		}
		return put, touched
	}
	for i, want := range []struct{ put, touched int }{{n, 0}, {0, n}, {0, n}} {
		before := rt.n.Load()
		put, touched := page(time.Now().Add(time.Duration(i) * time.Second))
		got := rt.n.Load() - before
		if put != want.put || touched != want.touched {
			t.Fatalf("page %d: put %d, touched %d; want %d, %d", i, put, touched, want.put, want.touched)
		}
		t.Logf("page %d: %d put, %d touched: %d round trips", i, put, touched, got)
		if got > 6 {
			t.Errorf("page %d (%d put, %d touched) took %d round trips, want at most 6", i, put, touched, got)
		}
	}
	tr, err := s.TriggerGet(t.Context(), "inbox")
	if err != nil || tr.Mirrored != n {
		t.Fatalf("TriggerGet: Mirrored %d, %v; want %d", tr.Mirrored, err, n)
	}
}

// TestTriggerDoRetriesDeadlock makes two triggers create instances with
// two concurrency keys in opposite orders, the classic deadlock (each
// create takes its key's advisory lock until commit). The server aborts
// one; TriggerDo must run it again, fn included, and both succeed.
func TestTriggerDoRetriesDeadlock(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	now := time.Now()
	var calls atomic.Int32
	type side struct {
		name, first, second string
		have                chan struct{} // closed once it holds its first key
		once                sync.Once
	}
	a := &side{name: "a", first: "k1", second: "k2", have: make(chan struct{})}
	b := &side{name: "b", first: "k2", second: "k1", have: make(chan struct{})}
	run := func(me, other *side) error {
		return s.TriggerDo(t.Context(), me.name, model.TriggerSchedule, now, func(tx store.TriggerTx) error {
			calls.Add(1)
			spec := func(n int, key string) model.InstanceSpec {
				return model.InstanceSpec{Template: "w", Version: 1, Name: fmt.Sprintf("%s/%d", me.name, n), ConcurrencyKey: key, Trigger: me.name}
			}
			if _, _, err := tx.InstanceCreate(spec(1, me.first)); err != nil {
				return err
			}
			me.once.Do(func() { close(me.have) })
			select { // a retry finds it closed already
			case <-other.have:
			case <-t.Context().Done():
				return t.Context().Err()
			}
			_, _, err := tx.InstanceCreate(spec(2, me.second))
			return err
		})
	}
	var wg sync.WaitGroup
	var errA, errB error
	wg.Go(func() { errA = run(a, b) })
	wg.Go(func() { errB = run(b, a) })
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatalf("TriggerDo: a %v, b %v", errA, errB)
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("fn ran %d times, want 3 (one deadlock victim run again)", got)
	}
	if got := s.retries.Load(); got != 1 {
		t.Errorf("%d retries, want 1", got)
	}
	for _, name := range []string{"a/1", "a/2", "b/1", "b/2"} {
		in, err := s.InstanceGetByName(t.Context(), name)
		if err != nil || in.Trigger != name[:1] {
			t.Errorf("instance %s: %+v, %v; want it, started by trigger %s", name, in, err, name[:1])
		}
	}
}

// TestTriggerDoErrors checks what TriggerDo returns: fn's own error as it
// is (not dressed as a database error), the TriggerTx methods' errors
// translated to the model sentinels, and ErrUnavailable after Close.
func TestTriggerDoErrors(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	now := time.Now()
	boom := errors.New("boom")
	if err := s.TriggerDo(t.Context(), "t", model.TriggerFolder, now, func(store.TriggerTx) error { return boom }); err != boom {
		t.Errorf("fn's error came back as %v, want it unchanged", err)
	}
	err := s.TriggerDo(t.Context(), "t", model.TriggerFolder, now, func(tx store.TriggerTx) error {
		return tx.MirrorPut([]store.MirrorEntry{{Key: "k", Fingerprint: "f", Data: json.RawMessage(`{bad`)}})
	})
	if !errors.Is(err, model.ErrInvalid) || !strings.HasPrefix(err.Error(), "postgres: trigger: mirror put: ") {
		t.Errorf("MirrorPut of bad JSON: %v, want postgres: trigger: mirror put: ... %v", err, model.ErrInvalid)
	}
	err = s.TriggerDo(t.Context(), "t", model.TriggerFolder, now, func(tx store.TriggerTx) error {
		return tx.SetState(json.RawMessage(`[1,`))
	})
	if !errors.Is(err, model.ErrInvalid) {
		t.Errorf("SetState of bad JSON: %v, want %v", err, model.ErrInvalid)
	}
	err = s.TriggerDo(t.Context(), "", model.TriggerFolder, now, func(store.TriggerTx) error { return nil })
	if !errors.Is(err, model.ErrInvalid) {
		t.Errorf("TriggerDo without a name: %v, want %v", err, model.ErrInvalid)
	}
	s.Close()
	called := false
	err = s.TriggerDo(t.Context(), "t", model.TriggerFolder, now, func(store.TriggerTx) error { called = true; return nil })
	if !errors.Is(err, model.ErrUnavailable) || called {
		t.Errorf("TriggerDo after Close: %v (fn called: %v), want %v", err, called, model.ErrUnavailable)
	}
}

// TestMirrorPutRepeatedKeys puts one key twice in one call: the last
// entry counts, and Mirrored counts the key once.
func TestMirrorPutRepeatedKeys(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	now := time.Now()
	err := s.TriggerDo(t.Context(), "t", model.TriggerFolder, now, func(tx store.TriggerTx) error {
		if err := tx.MirrorPut([]store.MirrorEntry{{Key: "k", Fingerprint: "old"}, {Key: "j", Fingerprint: "j"}}); err != nil {
			return err
		}
		if err := tx.MirrorPut([]store.MirrorEntry{{Key: "k", Fingerprint: "f1"}, {Key: "n", Fingerprint: "n"}, {Key: "k", Fingerprint: "f2"}}); err != nil {
			return err
		}
		m, err := tx.MirrorGet([]string{"k", "k"})
		if err != nil {
			return err
		}
		if len(m) != 1 || m["k"].Fingerprint != "f2" {
			t.Errorf("MirrorGet: %+v, want k with fingerprint f2", m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if tr, err := s.TriggerGet(t.Context(), "t"); err != nil || tr.Mirrored != 3 {
		t.Errorf("Mirrored %d, %v; want 3", tr.Mirrored, err)
	}
}

// explain returns the plan of sql with args.
func explain(t *testing.T, s *Store, sql string, args ...any) string {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), `EXPLAIN `+sql, args...)
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan.String()
}

// TestTriggerPlans checks, with large mirrors, many finished instances and
// many records, that the per-page queries read their indexes instead of
// scanning tables.
func TestTriggerPlans(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	for _, sql := range []string{
		`INSERT INTO mirror (trigger, key, fingerprint, seen_at)
		 SELECT 't' || (g % 4), 'dir/file-' || g, 'f', now() FROM generate_series(1, 80000) g`,
		// A plant: 100 triggers over 50 templates, one instance in ten
		// still running.
		`INSERT INTO instances (name, template, version, args, state, trigger, created_at, updated_at)
		 SELECT 'i' || g, 'w' || (g % 50), 1, '{}', CASE WHEN g % 10 = 0 THEN 'running' ELSE 'succeeded' END,
		        't' || (g % 100), now(), now()
		 FROM generate_series(1, 60000) g`,
		`INSERT INTO trigger_records (trigger, key, action, at)
		 SELECT 't' || (g % 100), 'k' || g, 'started', now() FROM generate_series(1, 60000) g`,
		`ANALYZE mirror, instances, trigger_records`,
	} {
		if _, err := s.pool.Exec(t.Context(), sql); err != nil {
			t.Fatal(err)
		}
	}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("dir/file-%d", i*4+1)
	}
	limit := 100
	for _, tc := range []struct {
		what, sql, index string
		args             []any
	}{
		{"MirrorGet", mirrorGetSQL, "mirror_pkey", []any{"t1", keys}},
		{"ActiveInstances", activeInstancesSQL, "instances_live_trigger", []any{"t10"}},
		{"TriggerRecords of one", recordsOfSQL, "trigger_records_newest", []any{"t1", limit}},
		{"TriggerRecords of all", recordsAllSQL, "trigger_records_pkey", []any{limit}},
	} {
		if p := explain(t, s, tc.sql, tc.args...); !strings.Contains(p, tc.index) || strings.Contains(p, "Seq Scan") {
			t.Errorf("%s does not read %s:\n%s", tc.what, tc.index, p)
		}
	}
}

// TestTriggerNotifies checks that another server's WatchJobs hears
// "@instances" when TriggerDo creates an instance: workers everywhere
// learn of triggered instances at once.
func TestTriggerNotifies(t *testing.T) {
	t.Parallel()
	ss := stores(t, 2)
	w := watch(t, ss[1])
	// The listener may not be listening yet: create until it hears one.
	i := 0
	eventually.True(t, 15*time.Second, func() bool {
		if w.count(instancesPayload) > 0 {
			return true
		}
		i++
		err := ss[0].TriggerDo(t.Context(), "s", model.TriggerSchedule, time.Now(), func(tx store.TriggerTx) error {
			_, _, err := tx.InstanceCreate(model.InstanceSpec{Template: "w", Version: 1, Name: fmt.Sprintf("s/%d", i)})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return false
	}, "an @instances notification")
}

// TestTriggerLimits pins what the contract leaves open, as the SQLite
// engine does it: MirrorStale with a limit of zero or less returns none;
// TriggerRecords with one returns defaultListLimit records.
func TestTriggerLimits(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	now := time.Now()
	err := s.TriggerDo(t.Context(), "t", model.TriggerFolder, now, func(tx store.TriggerTx) error {
		if err := tx.MirrorPut([]store.MirrorEntry{{Key: "a", Fingerprint: "f"}}); err != nil {
			return err
		}
		for i := range defaultListLimit + 1 {
			if _, err := tx.Record(model.TriggerRecord{Key: fmt.Sprint(i), Action: model.RecordStarted}); err != nil {
				return err
			}
		}
		for _, limit := range []int{0, -1} {
			if got, err := tx.MirrorStale(now.Add(time.Hour), limit); err != nil || len(got) != 0 {
				t.Errorf("MirrorStale(limit %d) = %v, %v; want none", limit, got, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"t", ""} {
		if got, err := s.TriggerRecords(t.Context(), name, 0); err != nil || len(got) != defaultListLimit {
			t.Errorf("TriggerRecords(%q, 0): %d records, %v; want %d", name, len(got), err, defaultListLimit)
		}
	}
}
