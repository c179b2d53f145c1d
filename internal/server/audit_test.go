package server_test

import (
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server"
	"github.com/dpe-engine/dpe/internal/wire"
)

// TestAuditRetention: the server writes an entry per mutating call and
// its cleaner purges entries older than the audit retention, and only
// those, even with the job retention off (0: keep jobs forever).
func TestAuditRetention(t *testing.T) {
	fake := clock.NewFake(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC))
	srv, _ := runServer(t, server.Config{Clock: fake, AuditRetention: time.Hour, CleanEvery: 20 * time.Millisecond})
	ctx := t.Context()
	c, err := client.New(client.Config{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	trail := func(want int, what string) wire.AuditPage {
		t.Helper()
		return *eventually.Value(t, 10*time.Second, func() (*wire.AuditPage, error) { return c.ListAudit(ctx, client.AuditQuery{}) },
			func(p *wire.AuditPage) bool { return p.Total == want }, what)
	}
	old, err := c.SubmitJob(ctx, model.JobSpec{Type: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	p := trail(1, "the submit's entry")
	if e := p.Items[0]; e.Route != "POST /v1/jobs" || e.Principal != "-" || !e.At.Equal(fake.Now()) {
		t.Fatalf("entry %+v: want the submit, by - (no auth), at the server's clock", e)
	}
	// Cleaner rounds pass (every 20 ms) while the entry is younger than
	// the retention: it stays.
	fake.Advance(59 * time.Minute)
	if _, err := c.CancelJob(ctx, old.ID); err != nil {
		t.Fatal(err)
	}
	trail(2, "the cancel's entry beside the submit's")
	fake.Advance(2 * time.Minute) // the submit is 61 min old, the cancel 2
	p = trail(1, "the submit's entry purged, the cancel's kept")
	if p.Items[0].Route != "POST /v1/jobs/{id}/cancel" {
		t.Fatalf("kept %+v, want the cancel", p.Items[0])
	}
	if _, err := c.GetJob(ctx, old.ID); err != nil {
		t.Fatalf("the job, with job retention off: %v", err)
	}
}
