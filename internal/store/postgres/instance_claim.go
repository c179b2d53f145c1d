package postgres

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// instanceClaimSQL leases, in one statement, the instances due for the
// worker's attention.
//   - cand reads the due range of the partial index instances_due
//     (wake_at <= now among live instances): instances waiting for an event
//     (wake_at NULL) or a later time are not even visited. Of those, it
//     keeps the ones the worker holds (worker = me, even with an expired
//     lease nobody took) and the free ones (no holder, or lease expired).
//   - the queue rule: an instance with policy queue is passed over while an
//     older (smaller id) live instance of its key exists, an index probe of
//     instances_key. One whose cancel was asked is not: its worker only
//     ends it, which must not wait for the key.
//   - ranked numbers the new (not held) candidates per template in claim
//     order, so picked keeps at most Slots[template] (else Default) of each;
//     held ones cost no slot. Then the Limit, in claim order.
//   - locked takes the picked rows FOR UPDATE SKIP LOCKED: a row another
//     claim is taking right now is skipped, never handed out twice. Its
//     WHERE is evaluated again on the newest row version after the lock
//     (read committed), so a row leased by a claim that committed after
//     this statement began is dropped. The cap and the limit were counted
//     before the skip, so a concurrent claim may make this one return less.
//   - the epoch grows only when the holder changes: a worker re-claiming
//     its own lease keeps its fence. wake_at is left alone (see
//     store.InstanceStore).
var instanceClaimSQL = `
WITH cand AS (
	SELECT i.id, i.template, i.priority, i.worker = $1 AS mine
	FROM instances i
	WHERE i.state IN ` + liveStates + ` AND i.wake_at <= $2
		AND (i.worker = $1 OR i.worker = '' OR i.lease_until < $2)
		AND (cardinality($3::text[]) = 0 OR i.template = ANY($3::text[]))
		AND NOT (i.id = ANY($9::int8[]))
		AND NOT (i.concurrency_policy = 'queue' AND i.concurrency_key <> '' AND NOT i.cancel_asked
			AND EXISTS (SELECT 1 FROM instances o
			            WHERE o.concurrency_key = i.concurrency_key AND o.concurrency_key <> ''
			              AND o.id < i.id AND o.state IN ` + liveStates + `))
), ranked AS (
	SELECT c.*, row_number() OVER (PARTITION BY c.template, c.mine ORDER BY c.priority DESC, c.id) AS rn
	FROM cand c
), picked AS (
	SELECT r.id
	FROM ranked r
	LEFT JOIN unnest($4::text[], $5::int4[]) AS s(template, n) ON s.template = r.template
	WHERE r.mine OR r.rn <= coalesce(s.n, $6::int4)
	ORDER BY r.priority DESC, r.id
	LIMIT $7::int8
), locked AS (
	SELECT i.id
	FROM instances i
	WHERE i.id IN (SELECT id FROM picked)
		AND i.state IN ` + liveStates + ` AND i.wake_at <= $2
		AND (i.worker = $1 OR i.worker = '' OR i.lease_until < $2)
	FOR UPDATE SKIP LOCKED
)
UPDATE instances i SET
	epoch       = CASE WHEN i.worker = $1 THEN i.epoch ELSE i.epoch + 1 END,
	worker      = $1,
	lease_until = $8,
	updated_at  = $2
FROM locked
WHERE i.id = locked.id
RETURNING ` + instanceColsOf("i")

// InstanceClaim leases to p.Worker the instances due for attention that it
// holds or nobody holds (see store.InstanceStore and instanceClaimSQL),
// highest priority first, then oldest. A Limit <= 0 means no cap, a zero
// LeaseTTL 30 s; negative slots count as none.
func (s *Store) InstanceClaim(ctx context.Context, p store.InstanceClaimParams) ([]model.Instance, error) {
	const op = "claim instances"
	if p.Worker == "" {
		return nil, s.wrap(op, model.Invalid("worker", "required"))
	}
	var limit *int // NULL: LIMIT NULL is no limit
	if p.Limit > 0 {
		limit = &p.Limit
	}
	ttl := p.LeaseTTL
	if ttl <= 0 {
		ttl = defaultLeaseTTL
	}
	templates := p.Templates
	if templates == nil {
		templates = []string{}
	}
	slotNames := make([]string, 0, len(p.Slots))
	slotNs := make([]int32, 0, len(p.Slots))
	for t, n := range p.Slots {
		slotNames = append(slotNames, t)
		slotNs = append(slotNs, clampInt32(n))
	}
	exclude := p.Exclude
	if exclude == nil {
		exclude = []int64{}
	}
	var out []model.Instance
	err := s.tx(ctx, op, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, instanceClaimSQL, p.Worker, p.Now, templates,
			slotNames, slotNs, clampInt32(p.Default), limit, p.Now.Add(ttl), exclude)
		if err != nil {
			return err
		}
		out, err = collectInstances(rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b model.Instance) int {
		if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if out == nil {
		out = []model.Instance{}
	}
	return out, nil
}

// clampInt32 bounds a slot count to [0, MaxInt32].
func clampInt32(n int) int32 {
	return int32(min(max(n, 0), math.MaxInt32))
}

// InstanceHeartbeat renews, until now+ttl, the worker's leases on the live
// instances among ids, and returns (in the order given) the ids it does
// not hold, or that ended: the worker must drop them. A lease that expired
// but that nobody took is still the worker's and is renewed.
func (s *Store) InstanceHeartbeat(ctx context.Context, worker string, ids []int64, ttl time.Duration, now time.Time) ([]int64, error) {
	const op = "instance heartbeat"
	if worker == "" {
		return nil, s.wrap(op, model.Invalid("worker", "required"))
	}
	if len(ids) == 0 {
		return []int64{}, nil
	}
	if ttl <= 0 {
		ttl = defaultLeaseTTL
	}
	held := make(map[int64]bool, len(ids))
	err := s.tx(ctx, op, func(tx pgx.Tx) error {
		clear(held)
		rows, err := tx.Query(ctx, `
			UPDATE instances SET lease_until = $3
			WHERE id = ANY($2::int8[]) AND worker = $1 AND state IN `+liveStates+`
			RETURNING id`, worker, ids, now.Add(ttl))
		if err != nil {
			return err
		}
		var id int64
		_, err = pgx.ForEachRow(rows, []any{&id}, func() error {
			held[id] = true
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	lost := []int64{}
	seen := make(map[int64]bool, len(ids))
	for _, id := range ids {
		if !held[id] && !seen[id] {
			lost = append(lost, id)
		}
		seen[id] = true
	}
	return lost, nil
}

// releaseInstancesSQL drops the worker's leases. The epoch stays: the next
// holder's claim increments it. Workers are told when a released instance
// is due, since another one may take it at once.
var releaseInstancesSQL = `
WITH upd AS (
	UPDATE instances SET worker = '', lease_until = NULL
	WHERE id = ANY($2::int8[]) AND worker = $1
	RETURNING state, wake_at
), notified AS (
	` + notifyInstancesSQL + `
	WHERE EXISTS (SELECT 1 FROM upd WHERE state IN ` + liveStates + ` AND wake_at <= $3)
)
SELECT count(*) FROM notified`

// InstanceRelease drops the worker's leases on the instances (a worker
// stopping) so that another worker may take them at once. Ids it does not
// hold are left alone.
func (s *Store) InstanceRelease(ctx context.Context, worker string, ids []int64, now time.Time) error {
	const op = "release instances"
	if worker == "" {
		return s.wrap(op, model.Invalid("worker", "required"))
	}
	if len(ids) == 0 {
		return nil
	}
	return s.tx(ctx, op, func(tx pgx.Tx) error {
		var n int
		return tx.QueryRow(ctx, releaseInstancesSQL, worker, ids, now).Scan(&n)
	})
}
