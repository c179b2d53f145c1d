package sqlite

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
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

// TestMigrateFrom0004 upgrades a file written before jobs kept the digest
// of their last report (0005): a job reported then keeps an empty digest, so a
// repeat of its old report is refused, and new reports are judged by
// their digest.
func TestMigrateFrom0004(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dpe.db")
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	setup := []string{`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`}
	for _, m := range ms[:4] {
		setup = append(setup, m.sql, fmt.Sprintf(`INSERT INTO schema_version (version, name, applied_at) VALUES (%d, '%s', 0)`, m.version, m.name))
	}
	setup = append(setup, `INSERT INTO jobs (type, params, state, max_attempts, backoff, backoff_max, instance_id,
			epoch, attempt, reported_epoch, run_after, created_at, updated_at, finished_at)
		VALUES ('old', '{}', 'succeeded', 3, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0)`)
	for _, q := range setup {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("set up a 0004 file: %v", err)
		}
	}
	_ = db.Close()

	s := openAt(t, path)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after the upgrade: %v", err)
	}
	p, err := s.JobList(t.Context(), model.JobFilter{})
	if err != nil || p.Total != 1 {
		t.Fatalf("jobs after the upgrade: %d, %v", p.Total, err)
	}
	old := p.Items[0]
	if _, err := s.JobComplete(t.Context(), model.Completion{ID: old.ID, Epoch: 1}, storetest.T0); !errors.Is(err, model.ErrConflict) {
		t.Errorf("repeat of a report from before the upgrade: %v, want ErrConflict", err)
	}

	ins, err := s.JobInsert(t.Context(), []model.JobSpec{{Type: "new"}}, storetest.T0)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := s.JobClaim(t.Context(), store.ClaimParams{Processor: "p", Slots: map[string]int{"new": 1}, LeaseTTL: time.Minute, Now: storetest.T0})
	if err != nil || len(jobs) != 1 || jobs[0].ID != ins[0].Job.ID {
		t.Fatalf("claim after the upgrade: %v, %v", jobs, err)
	}
	c := model.Completion{ID: jobs[0].ID, Epoch: jobs[0].Epoch, Result: json.RawMessage(`{"n":1}`)}
	first, err := s.JobComplete(t.Context(), c, storetest.T0)
	if err != nil {
		t.Fatalf("complete after the upgrade: %v", err)
	}
	if again, err := s.JobComplete(t.Context(), c, storetest.T0); err != nil || again.State != first.State {
		t.Errorf("identical repeat: %v, %v; want it answered as before", again.State, err)
	}
	c.Result = json.RawMessage(`{"n":2}`)
	if _, err := s.JobComplete(t.Context(), c, storetest.T0); !errors.Is(err, model.ErrConflict) {
		t.Errorf("different report at the same epoch: %v, want ErrConflict", err)
	}
}

// TestMigrateFrom0011 upgrades a file written while a processor's presence
// (unavailable types, version, used slots, interval) rode in its labels
// under reserved keys (before 0012): the presence moves to its own column,
// the labels keep only the user's, and an unreadable used count is dropped
// as the old reader dropped it.
func TestMigrateFrom0011(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dpe.db")
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	setup := []string{`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`}
	for _, m := range ms[:11] {
		setup = append(setup, m.sql, fmt.Sprintf(`INSERT INTO schema_version (version, name, applied_at) VALUES (%d, '%s', 0)`, m.version, m.name))
	}
	for _, p := range storetest.PresenceUpgrade.Stored {
		setup = append(setup, fmt.Sprintf(`INSERT INTO processors (id, labels, quota, last_seen) VALUES ('%s', '%s', '{"q.x":4}', %d)`,
			p.ID, p.Labels, storetest.T0.UnixMilli()))
	}
	for _, q := range setup {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("set up a 0011 file: %v\n%s", err, q)
		}
	}
	_ = db.Close()

	s := openAt(t, path)
	got, err := s.ProcessorList(t.Context(), storetest.T0)
	if err != nil {
		t.Fatalf("ProcessorList after the upgrade: %v", err)
	}
	storetest.SamePresence(t, got, storetest.PresenceUpgrade.Want)
}
