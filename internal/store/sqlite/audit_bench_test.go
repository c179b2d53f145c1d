package sqlite

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// BenchmarkAuditAppend measures the audit writer's unit of work: one
// AuditAppend (one commit) of 1 or 256 entries (its batch size).
func BenchmarkAuditAppend(b *testing.B) {
	for _, n := range []int{1, 256} {
		b.Run(fmt.Sprintf("Batch%d", n), func(b *testing.B) {
			s := openAt(b, filepath.Join(b.TempDir(), "dpe.db"))
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
