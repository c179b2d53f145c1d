package sqlite

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// openAt opens a store on path and closes it when the test ends.
func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path, nil)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openAt(t, filepath.Join(t.TempDir(), "dpe.db"))
	})
}

func TestWorkflowConformance(t *testing.T) {
	storetest.RunWorkflow(t, func(t *testing.T) store.WorkflowStore {
		return openAt(t, filepath.Join(t.TempDir(), "dpe.db"))
	})
}

func TestTriggerConformance(t *testing.T) {
	storetest.RunTrigger(t, func(t *testing.T) storetest.TriggerEngine {
		return openAt(t, filepath.Join(t.TempDir(), "dpe.db"))
	})
}

func TestTokenConformance(t *testing.T) {
	storetest.RunTokens(t, func(t *testing.T) store.TokenStore {
		return openAt(t, filepath.Join(t.TempDir(), "dpe.db"))
	})
}

func TestAuditConformance(t *testing.T) {
	storetest.RunAudit(t, func(t *testing.T) store.AuditStore {
		return openAt(t, filepath.Join(t.TempDir(), "dpe.db"))
	})
}

func TestReopenKeepsDataAndSkipsMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dpe.db")
	s, err := Open(t.Context(), path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	got, err := s.JobInsert(t.Context(), []model.JobSpec{{Type: "noop", Key: "k"}}, storetest.T0)
	if err != nil {
		t.Fatalf("JobInsert: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// A second Open runs the migrations again: a no-op on a current file.
	s = openAt(t, path)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after reopen: %v", err)
	}
	j, err := s.JobGet(t.Context(), got[0].Job.ID)
	if err != nil {
		t.Fatalf("JobGet after reopen: %v", err)
	}
	if j.Key != "k" || j.State != model.JobQueued {
		t.Errorf("job after reopen: %+v", j)
	}
	var rows int
	if err := s.r.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM schema_version`).Scan(&rows); err != nil {
		t.Fatalf("schema_version: %v", err)
	}
	if rows != latestVersion() {
		t.Errorf("schema_version has %d rows, want %d (one per migration, once)", rows, latestVersion())
	}
}

// rawDB opens the file with no pragmas and no migrations, as another tool
// would.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatalf("sql.Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestPingRefusesOtherSchemaVersion(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dpe.db")
	s := openAt(t, path)
	db := rawDB(t, path)
	for _, tc := range []struct {
		name string
		sql  string
	}{
		{"older", `DELETE FROM schema_version WHERE version = (SELECT MAX(version) FROM schema_version)`},
		{"newer", `INSERT INTO schema_version (version, name, applied_at) VALUES (1000, '1000_future.sql', 0)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := db.ExecContext(t.Context(), `DELETE FROM schema_version`); err != nil {
				t.Fatal(err)
			}
			// Every version this binary has: a current schema.
			for v := 1; v <= latestVersion(); v++ {
				if _, err := db.ExecContext(t.Context(), `INSERT INTO schema_version (version, name, applied_at) VALUES (?, 'migration', 0)`, v); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Ping(t.Context()); err != nil {
				t.Fatalf("Ping on a current schema: %v", err)
			}
			if _, err := db.ExecContext(t.Context(), tc.sql); err != nil {
				t.Fatal(err)
			}
			if err := s.Ping(t.Context()); !errors.Is(err, model.ErrUnavailable) {
				t.Fatalf("Ping on an %s schema: %v, want ErrUnavailable", tc.name, err)
			}
		})
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dpe.db")
	s, err := Open(t.Context(), path, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	_ = s.Close()
	if _, err := rawDB(t, path).ExecContext(t.Context(),
		`INSERT INTO schema_version (version, name, applied_at) VALUES (1000, '1000_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), path, nil); err == nil {
		_ = s.Close()
		t.Fatal("Open of a file from a newer binary succeeded")
	}
}

func TestOpenRefusesMemory(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db", "a?b"} {
		if s, err := Open(t.Context(), path, nil); !errors.Is(err, model.ErrInvalid) {
			if s != nil {
				_ = s.Close()
			}
			t.Errorf("Open(%q): %v, want ErrInvalid", path, err)
		}
	}
}

func TestPragmas(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "dpe.db"))
	for _, tc := range []struct {
		db    *sql.DB
		name  string
		query string
		want  string
	}{
		{s.w, "writer journal_mode", "PRAGMA journal_mode", "wal"},
		{s.w, "writer synchronous", "PRAGMA synchronous", "2"}, // FULL
		{s.w, "writer busy_timeout", "PRAGMA busy_timeout", "10000"},
		{s.w, "writer foreign_keys", "PRAGMA foreign_keys", "1"},
		{s.r, "reader journal_mode", "PRAGMA journal_mode", "wal"},
		{s.r, "reader synchronous", "PRAGMA synchronous", "2"},
		{s.r, "reader query_only", "PRAGMA query_only", "1"},
	} {
		var got string
		if err := tc.db.QueryRowContext(t.Context(), tc.query).Scan(&got); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s = %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestInvalidInputIsRefused(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "dpe.db"))
	_, err := s.JobInsert(t.Context(), []model.JobSpec{{Type: "ok"}, {Type: ""}}, storetest.T0)
	if !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("insert of an empty type: %v, want ErrInvalid", err)
	}
	p, err := s.JobList(t.Context(), model.JobFilter{})
	if err != nil || p.Total != 0 {
		t.Fatalf("after a refused batch: %d jobs, %v", p.Total, err)
	}
	if _, err := s.JobSetPriorityByInstance(t.Context(), 0, 1, storetest.T0); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("priority of instance 0: %v, want ErrInvalid", err)
	}
}

func TestAlertConformance(t *testing.T) {
	storetest.RunAlerts(t, func(t *testing.T) storetest.AlertEngine {
		return openAt(t, filepath.Join(t.TempDir(), "dpe.db"))
	})
}
