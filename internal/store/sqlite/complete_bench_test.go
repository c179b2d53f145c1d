package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/store/storetest"
)

// BenchmarkJobComplete completes 1,000 running jobs per iteration, one
// JobComplete per job (one commit each) or JobCompleteMany in batches,
// with synchronous=FULL on a real file. Inserting and claiming the jobs is
// not timed.
func BenchmarkJobComplete(b *testing.B) {
	const jobs = 1000
	for _, batch := range []int{1, 10, 100, 1000} {
		name := fmt.Sprintf("Batch%d", batch)
		if batch == 1 {
			name = "OneByOne"
		}
		b.Run(name, func(b *testing.B) {
			s := openAt(b, filepath.Join(b.TempDir(), "dpe.db"))
			specs := make([]model.JobSpec, jobs)
			for i := range specs {
				specs[i] = model.JobSpec{Type: "bench"}
			}
			now := storetest.T0
			done := 0
			for b.Loop() {
				b.StopTimer()
				held := benchClaim(b, s, specs, now)
				b.StartTimer()
				if batch == 1 {
					for _, j := range held {
						if _, err := s.JobComplete(b.Context(), model.Completion{ID: j.ID, Epoch: j.Epoch}, now); err != nil {
							b.Fatal(err)
						}
					}
				} else {
					for k := 0; k < len(held); k += batch {
						cs := make([]model.Completion, 0, batch)
						for _, j := range held[k:min(k+batch, len(held))] {
							cs = append(cs, model.Completion{ID: j.ID, Epoch: j.Epoch})
						}
						if _, err := s.JobCompleteMany(b.Context(), cs, now); err != nil {
							b.Fatal(err)
						}
					}
				}
				done += len(held)
				now = now.Add(time.Second)
			}
			b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}

// benchClaim inserts the specs and claims them all.
func benchClaim(b *testing.B, s *Store, specs []model.JobSpec, now time.Time) []model.Job {
	b.Helper()
	if _, err := s.JobInsert(b.Context(), specs, now); err != nil {
		b.Fatal(err)
	}
	held, err := s.JobClaim(b.Context(), store.ClaimParams{
		Processor: "p1", Slots: map[string]int{"bench": len(specs)}, LeaseTTL: time.Minute, Now: now,
	})
	if err != nil {
		b.Fatal(err)
	}
	if len(held) != len(specs) {
		b.Fatalf("claimed %d jobs, want %d", len(held), len(specs))
	}
	return held
}
