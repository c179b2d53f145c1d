package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/store/storetest"
)

// TestMigrateFrom0010 upgrades a database written while a processor's
// presence (unavailable types, version, used slots, interval) rode in its
// labels under reserved keys (before 0011): the presence moves to its own
// column, the labels keep only the user's, and an unreadable used count is
// dropped as the old reader dropped it.
func TestMigrateFrom0010(t *testing.T) {
	t.Parallel()
	dsn := newTestDB(t).schemaDSN(t)
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `CREATE TABLE schema_version (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:10] {
		if _, err := conn.Exec(t.Context(), m.sql); err != nil {
			t.Fatalf("set up a 0010 database: %s: %v", m.name, err)
		}
		if _, err := conn.Exec(t.Context(), `INSERT INTO schema_version (version, name) VALUES ($1, $2)`, m.version, m.name); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range storetest.PresenceUpgrade.Stored {
		if _, err := conn.Exec(t.Context(), `INSERT INTO processors (id, labels, quota, last_seen) VALUES ($1, $2::jsonb, '{"q.x":4}', $3)`,
			p.ID, p.Labels, storetest.T0); err != nil {
			t.Fatalf("set up a 0010 database: processor %s: %v", p.ID, err)
		}
	}
	conn.Close(context.Background())

	s := openDSN(t, dsn)
	got, err := s.ProcessorList(t.Context(), storetest.T0)
	if err != nil {
		t.Fatalf("ProcessorList after the upgrade: %v", err)
	}
	storetest.SamePresence(t, got, storetest.PresenceUpgrade.Want)
}
