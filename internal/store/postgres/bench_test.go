package postgres

import (
	"fmt"
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

// BenchmarkWatcherPass measures one full pass of a folder watcher over
// 100,000 unchanged files, as the trigger service runs it: 100 pages of
// 1,000 (MirrorGet, then MirrorTouch of what is known), then the deletion
// check of the completed pass (MirrorStale), per b.N.
func BenchmarkWatcherPass(b *testing.B) {
	s := newTestDB(b).open(b)
	const files, pageSize = 100_000, 1000
	pages := make([][]store.MirrorEntry, files/pageSize)
	for p := range pages {
		pages[p] = make([]store.MirrorEntry, pageSize)
		for i := range pageSize {
			key := fmt.Sprintf("/data/inbox/show-%03d/take-%04d.wav", p, i)
			pages[p][i] = store.MirrorEntry{Key: key, Fingerprint: "size=48000000,mtime=1764072000",
				Data: []byte(`{"path":"` + key + `","size":48000000}`)}
		}
	}
	now := time.Now()
	for _, page := range pages {
		err := s.TriggerDo(b.Context(), "inbox", model.TriggerFolder, now, func(tx store.TriggerTx) error {
			return tx.MirrorPut(page)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	keys := make([][]string, len(pages))
	for p, page := range pages {
		for _, e := range page {
			keys[p] = append(keys[p], e.Key)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(time.Second)
		pass := now
		for p := range pages {
			err := s.TriggerDo(b.Context(), "inbox", model.TriggerFolder, now, func(tx store.TriggerTx) error {
				m, err := tx.MirrorGet(keys[p])
				if err != nil {
					return err
				}
				if len(m) != pageSize {
					return fmt.Errorf("page %d: %d known, want %d", p, len(m), pageSize)
				}
				if err := tx.MirrorTouch(keys[p]); err != nil {
					return err
				}
				if p < len(pages)-1 {
					return nil
				}
				stale, err := tx.MirrorStale(pass, 5000)
				if err == nil && len(stale) != 0 {
					err = fmt.Errorf("%d stale entries after a full pass", len(stale))
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/pass")
}

// BenchmarkAuditAppend measures the audit writer's unit of work: one
// AuditAppend (one commit) of 1 or 256 entries (its batch size).
func BenchmarkAuditAppend(b *testing.B) {
	for _, n := range []int{1, 256} {
		b.Run(fmt.Sprintf("Batch%d", n), func(b *testing.B) {
			s := newTestDB(b).open(b)
			es := make([]model.AuditEntry, n)
			for i := range es {
				es[i] = model.AuditEntry{At: time.Now(), Principal: "ops", Role: model.RoleOperator, Method: "POST",
					Route: "POST /v1/jobs/{id}/cancel", Target: "id=42", Status: 200, Remote: "192.0.2.7:51234", RequestID: "0123456789abcdef", Outcome: "ok"}
			}
			for b.Loop() {
				if err := s.AuditAppend(b.Context(), es); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
