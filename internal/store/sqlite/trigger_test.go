package sqlite

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store/storetest"
)

// TestTriggerQueryPlans guards the indexes of the trigger paths: counting
// a trigger's live instances reads only its entries of the partial index,
// the end of a full pass finds stale entries by seen_at, and a trigger's
// records come newest first without a sort.
func TestTriggerQueryPlans(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "dpe.db"))
	for _, tc := range []struct {
		name, query string
		args        []any
		want, never string
	}{
		{"active instances", activeInstancesSQL, []any{"t"}, "instances_trigger", ""},
		{"mirror stale", mirrorStaleSQL, []any{"t", 0, 10}, "mirror_seen", ""},
		{
			"records of a trigger",
			`SELECT ` + recordCols + ` FROM trigger_records WHERE "trigger" = ? ORDER BY id DESC LIMIT ?`,
			[]any{"t", 10}, "trigger_records_newest", "TEMP B-TREE",
		},
		{"mirror get", `SELECT ` + mirrorCols + ` FROM mirror WHERE "trigger" = ? AND key IN (?, ?)`, []any{"t", "a", "b"}, "PRIMARY KEY", ""},
	} {
		rows, err := s.w.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tc.query, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		_ = rows.Close()
		all := strings.Join(plan, "\n")
		t.Logf("%s plan:\n%s", tc.name, all)
		if !strings.Contains(all, tc.want) || (tc.never != "" && strings.Contains(all, tc.never)) {
			t.Errorf("%s plan:\n%s\nwant %s, never %q", tc.name, all, tc.want, tc.never)
		}
	}
}

// TestMigrateFrom0002 upgrades a file written by a binary that knew 0001
// and 0002 (no triggers): its instances stay, started by no trigger, and
// triggers work.
func TestMigrateFrom0002(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dpe.db")
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, path)
	for _, q := range []string{
		`CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`,
		ms[0].sql, ms[1].sql,
		`INSERT INTO schema_version (version, name, applied_at) VALUES (1, '0001_init.sql', 0), (2, '0002_workflows.sql', 0)`,
		`INSERT INTO instances (name, template, version, state, created_at, updated_at) VALUES ('old', 'w', 1, 'pending', 0, 0)`,
	} {
		if _, err := db.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("set up a 0002 file: %v", err)
		}
	}
	_ = db.Close()

	s := openAt(t, path)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping after the upgrade: %v", err)
	}
	old, err := s.InstanceGetByName(t.Context(), "old")
	if err != nil || old.Trigger != "" {
		t.Fatalf("old instance after the upgrade: %+v, %v", old, err)
	}
	if err := s.TriggerSetError(t.Context(), "nightly", model.TriggerSchedule, "", storetest.T0); err != nil {
		t.Fatalf("TriggerSetError after the upgrade: %v", err)
	}
}
