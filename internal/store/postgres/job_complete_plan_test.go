package postgres

import (
	"strings"
	"testing"
	"time"
)

// TestCompleteManyPlans checks, with many jobs and instances kept, that a
// batch of completions (the locking path and the one statement of a batch
// of successes, and a heartbeat, which locks jobs the same way) never
// scans a table: a join over arrays whose size the planner guesses
// could otherwise become a hash join over a full scan (see claimSQL).
func TestCompleteManyPlans(t *testing.T) {
	t.Parallel()
	s := newTestDB(t).open(t)
	ctx := t.Context()
	for _, sql := range []string{
		`INSERT INTO jobs (type, params, state, max_attempts, backoff_ns, backoff_max_ns, run_after, created_at, updated_at)
		 SELECT 't' || (g % 20), '{}', CASE WHEN g % 50 = 0 THEN 'running' ELSE 'succeeded' END,
		        3, 1, 1, now(), now(), now()
		 FROM generate_series(1, 100000) g`,
		`INSERT INTO instances (name, template, version, args, state, created_at, updated_at)
		 SELECT 'i' || g, 'w', 1, '{}', CASE WHEN g % 10 = 0 THEN 'running' ELSE 'succeeded' END, now(), now()
		 FROM generate_series(1, 50000) g`,
		`ANALYZE jobs, instances`,
	} {
		if _, err := s.pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	for _, n := range []int{1, 100, 5000} {
		var o outcomeColumns
		for i := range n {
			o.ids = append(o.ids, int64(50*(i+1)))
			o.epochs = append(o.epochs, 1)
			o.states = append(o.states, "succeeded")
			o.runAfter = append(o.runAfter, now)
			o.results = append(o.results, nil)
			o.errs = append(o.errs, "")
			o.progress = append(o.progress, 100)
			o.finishedAt = append(o.finishedAt, &now)
			o.digest = append(o.digest, "d")
			o.attempts = append(o.attempts, 1)
			if o.ended == nil {
				o.ended = map[int64]int64{}
			}
			o.ended[int64(10*(i+1))]++
		}
		wake, ended := o.wakeColumns()
		for name, plan := range map[string]string{
			"lock": explain(t, s, lockReportedSQL, o.ids),
			"heartbeat": explain(t, s, heartbeatSQL, o.ids, o.epochs, make([]*int32, n), o.errs,
				now, now),
			"apply": explain(t, s, applyCompletionsSQL, o.ids, o.epochs, o.states, o.runAfter,
				o.results, o.errs, o.progress, o.finishedAt, o.digest, now, wake, ended, o.attempts),
			"succeeded": explain(t, s, completeSucceededSQL, o.ids, o.epochs, o.results, o.digest, now),
		} {
			if strings.Contains(plan, "Seq Scan") {
				t.Errorf("batch of %d, %s: a table scan:\n%s", n, name, plan)
			}
		}
	}
}
