package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestQueryPlans guards the indexes that keep the hot paths O(log n): a
// claim must walk jobs_claim in hand-out order (no sort of the queue), and
// rescue must find expired leases through jobs_lease, and the lookup of a
// retried claim's jobs must read only the processor's running ones.
func TestQueryPlans(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "dpe.db"))
	for _, tc := range []struct {
		name, query string
		args        []any
		want        string
		never       string
	}{
		{
			name: "claim",
			// The statement's inner SELECT, as claimSQL runs it.
			query: claimSQL[strings.Index(claimSQL, "SELECT q.id"):strings.LastIndex(claimSQL, ")")],
			args:  []any{"t", 0, "{}", 5},
			want:  "jobs_claim", never: "TEMP B-TREE",
		},
		{
			// Runs at every claim with a key: a retried claim's jobs.
			name:  "claim key",
			query: claimedWithKeySQL,
			args:  []any{"p1", "k"},
			want:  "jobs_running_processor",
		},
		{
			name:  "rescue",
			query: `SELECT id FROM jobs WHERE state = 'running' AND lease_until < ?`,
			args:  []any{0},
			want:  "jobs_lease",
		},
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
