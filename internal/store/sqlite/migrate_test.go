package sqlite

import (
	"path/filepath"
	"testing"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store/storetest"
)

// TestMigrateFrom0001 upgrades a file written by a binary that knew only
// 0001 (jobs, no workflows): the jobs stay and workflows work.
func TestMigrateFrom0001(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dpe.db")
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	for _, q := range []string{
		`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
		ms[0].sql,
		`INSERT INTO schema_version (version, name, applied_at) VALUES (1, '0001_init.sql', 0)`,
		`INSERT INTO jobs (type, params, state, max_attempts, backoff, backoff_max, instance_id, run_after, created_at, updated_at)
			VALUES ('old', '{}', 'queued', 3, 0, 0, 0, 0, 0, 0)`,
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("set up a 0001 file: %v", err)
		}
	}
	_ = db.Close()

	s := openAt(t, path)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after the upgrade: %v", err)
	}
	if p, err := s.JobList(t.Context(), model.JobFilter{}); err != nil || p.Total != 1 {
		t.Fatalf("jobs after the upgrade: %d, %v", p.Total, err)
	}
	in, existing, err := s.InstanceCreate(t.Context(), model.InstanceSpec{Template: "w", Version: 1, Name: "i"}, storetest.T0)
	if err != nil || existing || in.State != model.InstancePending {
		t.Fatalf("InstanceCreate after the upgrade: %+v %v %v", in, existing, err)
	}
}
