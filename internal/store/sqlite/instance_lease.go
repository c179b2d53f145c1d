package sqlite

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// leaseInstanceSQL leases one instance to a worker. SET expressions see
// the row as it was, so the CASE compares with the previous holder: the
// holder re-claiming keeps its epoch (its advances stay valid), anyone
// else, or the holder after a release (no worker), fences the past out.
const leaseInstanceSQL = `
UPDATE instances SET
	epoch = CASE WHEN worker = ?1 THEN epoch ELSE epoch + 1 END,
	worker = ?1, lease_until = ?2, updated_at = ?3
WHERE id = ?4
RETURNING ` + instCols

// InstanceClaim leases the due instances the worker holds or may take, in
// one write transaction: the single writer makes it impossible for two
// claims to take the same free instance.
func (s *Store) InstanceClaim(ctx context.Context, p store.InstanceClaimParams) ([]model.Instance, error) {
	if p.Worker == "" {
		// '' marks a free lease: such a worker would "hold" every one.
		return nil, s.fail("claim instances", model.Invalid("worker", "required"))
	}
	out := []model.Instance{}
	err := s.write(ctx, "claim instances", func(tx *txn) error {
		out = out[:0]
		ids, err := pickInstances(ctx, tx, p)
		if err != nil {
			return err
		}
		until := ms(p.Now.Add(p.LeaseTTL))
		for _, id := range ids {
			in, err := scanInstance(tx.QueryRowContext(ctx, leaseInstanceSQL, p.Worker, until, ms(p.Now), id))
			if err != nil {
				return fmt.Errorf("instance %d: %w", id, err)
			}
			out = append(out, in)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// pickInstances chooses the instances a claim leases, in hand-out order
// (priority, then oldest).
//
// The candidates are the due live instances (instances_due) that the
// worker holds or whose lease is free or expired, sorted in memory: the
// due set is what workers have not caught up with yet, small next to the
// history the index leaves out.
// An instance of policy queue waits while an older live instance of its
// key exists (instances_key), unless its cancel was asked: a worker may
// then take it to end it rather than leave it pending behind the other.
//
// Slots are applied while walking the candidates, since a cap per
// template is not expressible as one LIMIT. When Default is 0 the query is
// narrowed to held instances and templates with a free slot, so that the
// walk does not read a backlog it may not take.
func pickInstances(ctx context.Context, tx *txn, p store.InstanceClaimParams) ([]int64, error) {
	query, args := candidateQuery(p)
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		ids   []int64
		taken = map[string]int{}
	)
	for rows.Next() {
		if p.Limit > 0 && len(ids) >= p.Limit {
			break
		}
		var (
			id       int64
			template string
			held     bool
		)
		if err := rows.Scan(&id, &template, &held); err != nil {
			return nil, err
		}
		if !held {
			capacity, ok := p.Slots[template]
			if !ok {
				capacity = p.Default
			}
			if taken[template] >= capacity {
				continue
			}
			taken[template]++
		}
		ids = append(ids, id)
	}
	// The rows are read to the end or closed before the updates run.
	return ids, rows.Err()
}

// candidateQuery builds the query of pickInstances: id, template and
// whether the worker holds it, for every instance the worker may lease
// now, in hand-out order.
func candidateQuery(p store.InstanceClaimParams) (string, []any) {
	now := ms(p.Now)
	query := `
		SELECT i.id, i.template, i.worker = ? FROM instances AS i
		WHERE i.state IN ` + liveStates + ` AND i.wake_at <= ?
		  AND (i.worker = ? OR i.worker = '' OR i.lease_until IS NULL OR i.lease_until < ?)
		  AND (i.concurrency_policy <> 'queue' OR i.concurrency_key = '' OR i.cancel_asked OR NOT EXISTS (
			SELECT 1 FROM instances AS o
			WHERE o.concurrency_key = i.concurrency_key AND o.state IN ` + liveStates + ` AND o.id < i.id))`
	args := []any{p.Worker, now, p.Worker, now}
	if len(p.Exclude) > 0 {
		query += ` AND i.id NOT IN (SELECT value FROM json_each(?))`
		args = append(args, idsJSON(p.Exclude))
	}
	if len(p.Templates) > 0 {
		query += ` AND i.template IN (` + placeholders(len(p.Templates)) + `)`
		for _, t := range p.Templates {
			args = append(args, t)
		}
	}
	if p.Default <= 0 {
		var open []any
		for _, t := range slices.Sorted(maps.Keys(p.Slots)) {
			if p.Slots[t] > 0 {
				open = append(open, t)
			}
		}
		query += ` AND (i.worker = ?`
		args = append(args, p.Worker)
		if len(open) > 0 {
			query += ` OR i.template IN (` + placeholders(len(open)) + `)`
			args = append(args, open...)
		}
		query += `)`
	}
	return query + ` ORDER BY i.priority DESC, i.id`, args
}

// InstanceHeartbeat renews the worker's leases on live instances it holds
// (even expired ones nobody took) and returns, in the order asked, the ids
// it no longer holds: taken by another, released, final or missing.
func (s *Store) InstanceHeartbeat(ctx context.Context, worker string, ids []int64, ttl time.Duration, now time.Time) ([]int64, error) {
	lost := []int64{}
	if len(ids) == 0 {
		return lost, nil
	}
	err := s.write(ctx, "instance heartbeat", func(tx *txn) error {
		lost = lost[:0]
		for _, id := range ids {
			n, err := execCount(ctx, tx, `
				UPDATE instances SET lease_until = ?, updated_at = ?
				WHERE id = ? AND worker = ? AND worker <> '' AND state IN `+liveStates,
				ms(now.Add(ttl)), ms(now), id, worker)
			if err != nil {
				return err
			}
			if n == 0 {
				lost = append(lost, id)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lost, nil
}

// InstanceRelease frees the worker's leases on the instances so that any
// worker may take them at once. The epoch stays: the next claim raises it.
func (s *Store) InstanceRelease(ctx context.Context, worker string, ids []int64, now time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	return s.write(ctx, "release instances", func(tx *txn) error {
		args := []any{ms(now), worker}
		for _, id := range ids {
			args = append(args, id)
		}
		_, err := tx.ExecContext(ctx, `
			UPDATE instances SET worker = '', lease_until = NULL, updated_at = ?
			WHERE worker = ? AND worker <> '' AND id IN (`+placeholders(len(ids))+`)`, args...)
		return err
	})
}
