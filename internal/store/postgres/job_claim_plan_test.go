package postgres

import (
	"strings"
	"testing"
	"time"
)

// TestClaimKeyPlan checks, with many jobs kept and many processors
// running some, that the lookup of a retried claim's jobs (alone, and in
// the one-statement claim) reads the
// processor's running jobs through jobs_running_processor, never a scan
// of jobs: it runs at every claim.
func TestClaimKeyPlan(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	ctx := t.Context()
	for _, sql := range []string{
		`INSERT INTO jobs (type, params, state, processor, claim_key, max_attempts, backoff_ns, backoff_max_ns, run_after, created_at, updated_at)
		 SELECT 't' || (g % 20), '{}', CASE WHEN g % 50 = 0 THEN 'running' ELSE 'succeeded' END,
		        'p' || (g % 40), 'k' || (g % 1000), 3, 1, 1, now(), now(), now()
		 FROM generate_series(1, 200000) g`,
		`ANALYZE jobs`,
	} {
		if _, err := s.pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	for name, plan := range map[string]string{
		"lookup": explain(t, s, claimedWithKeySQL, "p10", "k10"),
		"claim unlimited": explain(t, s, claimUnlimitedSQL,
			[]string{"t4"}, []int32{10}, time.Now(), `{}`, "p10", time.Now(), "k10"),
	} {
		if strings.Contains(plan, "Seq Scan") || !strings.Contains(plan, "jobs_running_processor") {
			t.Errorf("%s: want jobs_running_processor, no table scan:\n%s", name, plan)
		}
	}
}
