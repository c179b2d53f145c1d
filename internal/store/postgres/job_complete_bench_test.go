package postgres

import (
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// BenchmarkJobComplete1000 measures the completion of 1,000 running jobs
// (noop jobs: no result, no error), per b.N: one JobComplete per job (one
// commit each) against JobCompleteMany in batches of 100 (group commit,
// ten commits). Inserting and claiming the jobs is not timed.
func BenchmarkJobComplete1000(b *testing.B) {
	const jobs = 1000
	for _, bc := range []struct {
		name  string
		batch int // 0: JobComplete one by one
	}{{"one-by-one", 0}, {"batch-10", 10}, {"batch-100", 100}} {
		b.Run(bc.name, func(b *testing.B) {
			s := newTestDB(b).open(b)
			ctx, now := b.Context(), time.Now()
			specs := make([]model.JobSpec, jobs)
			for i := range specs {
				specs[i] = model.JobSpec{Type: "bench"}
			}
			for b.Loop() {
				b.StopTimer()
				if _, err := s.JobInsert(ctx, specs, now); err != nil {
					b.Fatal(err)
				}
				claimed, err := s.JobClaim(ctx, store.ClaimParams{
					Processor: "p", Slots: map[string]int{"bench": jobs}, LeaseTTL: time.Hour, Now: now,
				})
				if err != nil || len(claimed) != jobs {
					b.Fatalf("claim: %d jobs, %v", len(claimed), err)
				}
				cs := make([]model.Completion, jobs)
				for i, j := range claimed {
					cs[i] = model.Completion{ID: j.ID, Epoch: j.Epoch}
				}
				b.StartTimer()
				if bc.batch == 0 {
					for _, c := range cs {
						if _, err := s.JobComplete(ctx, c, now); err != nil {
							b.Fatal(err)
						}
					}
					continue
				}
				for i := 0; i < jobs; i += bc.batch {
					res, err := s.JobCompleteMany(ctx, cs[i:i+bc.batch], now)
					if err != nil {
						b.Fatal(err)
					}
					for _, r := range res {
						if r.Err != nil {
							b.Fatal(r.Err)
						}
					}
				}
			}
			b.ReportMetric(float64(b.N*jobs)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
