package sqlite

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// TestInstanceQueryPlans guards the indexes of the workflow hot paths: a
// claim reads only due live instances and checks the queue policy by a
// seek; the lookups by key, parent and instance use their indexes.
func TestInstanceQueryPlans(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "dpe.db"))
	parentWhere, parentArgs := instanceFilter(model.InstanceFilter{ParentID: 7})
	claim, claimArgs := candidateQuery(store.InstanceClaimParams{Worker: "w", Default: 1, Now: time.UnixMilli(0)})
	for _, tc := range []struct {
		name, query string
		args        []any
		want        []string
	}{
		{"claim", claim, claimArgs, []string{"instances_due", "instances_key"}},
		{
			"next of key",
			`SELECT id FROM instances WHERE concurrency_key = ? AND state = 'pending' ORDER BY id LIMIT 1`,
			[]any{"k"}, []string{"instances_key"},
		},
		{"list by parent", `SELECT id FROM instances WHERE ` + parentWhere + ` ORDER BY id DESC`, parentArgs, []string{"instances_parent"}},
		{
			"jobs of an instance",
			`SELECT id FROM jobs WHERE instance_id = ? AND instance_id <> 0 AND state = 'queued'`,
			[]any{7}, []string{"jobs_instance"},
		},
		{
			"rescue wake",
			`SELECT instance_id FROM jobs WHERE state = 'running' AND lease_until < ? AND instance_id <> 0 AND (cancel_asked OR attempt >= max_attempts)`,
			[]any{0}, []string{"jobs_lease"},
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
		for _, w := range tc.want {
			if !strings.Contains(all, w) {
				t.Errorf("%s plan:\n%s\nwant %s", tc.name, all, w)
			}
		}
	}
}
