package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
)

// watcher runs WatchJobs in the background and records the types it hears.
type watcher struct {
	mu     sync.Mutex
	seen   map[string]int
	cancel context.CancelFunc
	done   chan error
}

func watch(t *testing.T, s *Store) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w := &watcher{seen: make(map[string]int), cancel: cancel, done: make(chan error, 1)}
	go func() {
		w.done <- s.WatchJobs(ctx, func(typ string) {
			w.mu.Lock()
			w.seen[typ]++
			w.mu.Unlock()
		})
	}()
	t.Cleanup(func() { w.stop(t) })
	return w
}

func (w *watcher) count(typ string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[typ]
}

// stop ends the watch and checks it returned nil.
func (w *watcher) stop(t *testing.T) {
	t.Helper()
	w.cancel()
	select {
	case err, ok := <-w.done:
		if ok && err != nil {
			t.Errorf("WatchJobs returned %v, want nil", err)
		}
		if ok {
			close(w.done)
		}
	case <-time.After(10 * time.Second):
		t.Error("WatchJobs did not return after its context ended")
	}
}

// until inserts a job of typ through s every 50ms until w has heard typ
// (the listener may not be listening yet), failing after the deadline.
func (w *watcher) until(t *testing.T, s *Store, typ string) {
	t.Helper()
	eventually.True(t, 15*time.Second, func() bool {
		if w.count(typ) > 0 {
			return true
		}
		if _, err := s.JobInsert(t.Context(), []model.JobSpec{{Type: typ}}, time.Now()); err != nil {
			t.Fatalf("JobInsert: %v", err)
		}
		return false
	}, "a notification for "+typ)
}

func TestWatchJobsFromAnotherStore(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	dsn := db.schemaDSN(t)
	a, b := openDSN(t, dsn), openDSN(t, dsn)
	w := watch(t, a)
	w.until(t, b, "from.b")
}

// listenerPID returns the backend pid of the store's listening connection,
// waiting for it to appear (and to differ from not, when not is set).
func listenerPID(t *testing.T, s *Store, not int32) int32 {
	t.Helper()
	return eventually.Value(t, 15*time.Second, func() (int32, error) {
		var pid int32
		err := s.pool.QueryRow(t.Context(), `
			SELECT coalesce(max(pid), 0) FROM pg_stat_activity
			WHERE application_name = 'dpe-watch' AND datname = current_database() AND pid <> $1`, not).Scan(&pid)
		return pid, err
	}, func(pid int32) bool { return pid != 0 }, "a listening connection")
}

// TestWatchJobsSurvivesTerminate kills the listener's backend (what a
// database restart or fail-over does to it) and checks that WatchJobs goes
// on: it reconnects, and notifications arrive again.
func TestWatchJobsSurvivesTerminate(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	w := watch(t, s)
	w.until(t, s, "before")
	pid := listenerPID(t, s, 0)
	if _, err := s.pool.Exec(t.Context(), `SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	if again := listenerPID(t, s, pid); again == pid {
		t.Fatalf("listener pid still %d", pid)
	}
	w.until(t, s, "after")
	select {
	case err := <-w.done:
		t.Fatalf("WatchJobs ended after the terminate: %v", err)
	default:
	}
}

// TestWatchJobsCatchesUpAfterReconnect checks that jobs queued while the
// listener was away are announced once it is back.
func TestWatchJobsCatchesUpAfterReconnect(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	w := watch(t, s)
	w.until(t, s, "first")
	// A job queued without a notification stands for one whose
	// notification was sent while the listener was away.
	if _, err := s.pool.Exec(t.Context(), `
		INSERT INTO jobs (type, params, state, max_attempts, backoff_ns, backoff_max_ns, run_after, created_at, updated_at)
		VALUES ('missed', '{}', 'queued', 1, 1, 1, now(), now(), now())`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(t.Context(), `SELECT pg_terminate_backend($1)`, listenerPID(t, s, 0)); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 15*time.Second, func() bool { return w.count("missed") > 0 },
		"the announcement of the job queued around the reconnect")
}

func TestCloseEndsWatchJobs(t *testing.T) {
	t.Parallel()
	db := newTestDB(t)
	s, err := Open(t.Context(), db.schemaDSN(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.WatchJobs(context.Background(), func(string) {}) }()
	listenerPID(t, s, 0)
	s.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WatchJobs after Close: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WatchJobs did not end when the store closed")
	}
}
