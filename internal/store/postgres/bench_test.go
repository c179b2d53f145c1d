package postgres

import (
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// BenchmarkJobInsert100 measures one batch submit of 100 jobs (b.N batches).
func BenchmarkJobInsert100(b *testing.B) {
	s := newTestDB(b).open(b)
	specs := make([]model.JobSpec, 100)
	for i := range specs {
		specs[i] = model.JobSpec{Type: "bench", Params: []byte(`{"path":"/data/x"}`)}
	}
	now := time.Now()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.JobInsert(b.Context(), specs, now); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(specs))/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkClaimComplete measures the processor's path for one job: a
// claim of 10 then 10 completions, per 10 jobs.
func BenchmarkClaimComplete(b *testing.B) {
	s := newTestDB(b).open(b)
	now := time.Now()
	specs := make([]model.JobSpec, 1000)
	for i := range specs {
		specs[i] = model.JobSpec{Type: "bench"}
	}
	b.ResetTimer()
	n := 0
	for b.Loop() {
		jobs, err := s.JobClaim(b.Context(), store.ClaimParams{
			Processor: "p", Slots: map[string]int{"bench": 10}, LeaseTTL: time.Minute, Now: now,
		})
		if err != nil {
			b.Fatal(err)
		}
		if len(jobs) == 0 {
			b.StopTimer()
			if _, err := s.JobInsert(b.Context(), specs, now); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			continue
		}
		for _, j := range jobs {
			if _, err := s.JobComplete(b.Context(), model.Completion{ID: j.ID, Epoch: j.Epoch}, now); err != nil {
				b.Fatal(err)
			}
		}
		n += len(jobs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "jobs/s")
}
