package server

import (
	"context"
	"time"

	"github.com/dpe-engine/dpe/internal/lease"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// DefaultAuditRetention is how long audit entries are kept unless
// Config.AuditRetention says otherwise.
const DefaultAuditRetention = 90 * 24 * time.Hour

// Audit purge bounds: entries deleted per transaction, and transactions
// per cleaning round (the rest waits for the next round).
const (
	auditPurgeBatch  = 1000
	auditPurgeRounds = 100
)

// cleaner purges finished instances and jobs older than the retention,
// and audit entries older than the audit retention. It runs on one server
// at a time (the holder of the "server/cleaner" lease): purges are
// idempotent, but one deleter avoids needless contention.
func (s *Server) cleaner(ctx context.Context) {
	e := &lease.Elector{
		Acquirer: storeLeases{store: s.store, now: s.cfg.Clock.Now},
		Name:     "server/cleaner", Holder: s.cfg.ID, TTL: 30 * time.Second, Log: s.cfg.Log,
	}
	_ = e.Run(ctx, func(ctx context.Context, _ model.Lease) error {
		t := time.NewTicker(s.cfg.CleanEvery)
		defer t.Stop()
		for {
			s.purge(ctx)
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
	})
}

// purge deletes what finished before now - retention, and the audit
// entries older than the audit retention.
func (s *Server) purge(ctx context.Context) {
	s.purgeAudit(ctx)
	if s.cfg.Retention <= 0 {
		return
	}
	before := s.cfg.Clock.Now().Add(-s.cfg.Retention)
	n, err := s.store.InstancePurge(ctx, before)
	if err != nil && ctx.Err() == nil {
		s.cfg.Log.Warn("instance purge failed", "err", err)
	} else if n > 0 {
		s.cfg.Log.Info("purged finished workflow instances", "count", n, "finished_before", before)
	}
	n, err = s.store.JobPurge(ctx, before)
	if err != nil && ctx.Err() == nil {
		s.cfg.Log.Warn("job purge failed", "err", err)
	} else if n > 0 {
		s.cfg.Log.Info("purged finished jobs", "count", n, "finished_before", before)
	}
}

// purgeAudit deletes the audit entries recorded before now - audit
// retention, oldest first, in bounded transactions.
func (s *Server) purgeAudit(ctx context.Context) {
	as, ok := s.store.(store.AuditStore)
	if !ok {
		return
	}
	before := s.cfg.Clock.Now().Add(-s.cfg.AuditRetention)
	total := 0
	for range auditPurgeRounds {
		n, err := as.AuditPurge(ctx, before, auditPurgeBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.Log.Warn("audit purge failed", "err", err)
			}
			break
		}
		total += n
		if n < auditPurgeBatch {
			break
		}
	}
	if total > 0 {
		s.cfg.Log.Info("purged audit entries", "count", total, "recorded_before", before)
	}
}

// storeLeases takes the server's own named leases straight from the store
// (the remote roles take theirs through the API client).
type storeLeases struct {
	store store.LeaseStore
	now   func() time.Time
}

// LeaseAcquire takes or renews the lease.
func (l storeLeases) LeaseAcquire(ctx context.Context, name, holder string, ttl time.Duration) (model.Lease, error) {
	return l.store.LeaseAcquire(ctx, name, holder, ttl, l.now())
}

// LeaseRelease frees the lease if holder holds it.
func (l storeLeases) LeaseRelease(ctx context.Context, name, holder string) error {
	return l.store.LeaseRelease(ctx, name, holder)
}
