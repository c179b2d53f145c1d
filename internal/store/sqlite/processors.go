package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// ProcessorUpsert records what a processor says about itself (replacing
// what it said before) with LastSeen = now, and registers its quota types.
func (s *Store) ProcessorUpsert(ctx context.Context, p model.Processor, now time.Time) error {
	labels, err := encodeMap(p.Labels)
	if err != nil {
		return s.fail("upsert processor", err)
	}
	presence, err := json.Marshal(p.ProcessorPresence)
	if err != nil {
		return s.fail("upsert processor", err)
	}
	quota, err := encodeMap(p.Quota)
	if err != nil {
		return s.fail("upsert processor", err)
	}
	return s.write(ctx, "upsert processor", func(tx *txn) error {
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO processors (id, host, labels, quota, presence, draining, last_seen, started)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET
				host = excluded.host, labels = excluded.labels, quota = excluded.quota,
				presence = excluded.presence, draining = excluded.draining, last_seen = excluded.last_seen, started = excluded.started`,
			p.ID, p.Host, labels, quota, string(presence), p.Draining, ms(now), nullMS(&p.Started)); err != nil {
			return err
		}
		return ensureTypes(ctx, tx, slices.Sorted(maps.Keys(p.Quota)))
	})
}

// ProcessorList returns the processors seen at or after seenSince, by id,
// with the number of jobs each holds running, in all and per type.
func (s *Store) ProcessorList(ctx context.Context, seenSince time.Time) ([]model.Processor, error) {
	out := []model.Processor{}
	err := s.read(ctx, "list processors", func(tx *txn) error {
		// The count walks the partial index jobs_running_processor.
		rows, err := tx.QueryContext(ctx, `
			SELECT p.id, p.host, p.labels, p.quota, p.presence, p.draining, p.last_seen, p.started,
				(SELECT json_group_object(r.type, r.n) FROM (
					SELECT j.type, COUNT(*) AS n FROM jobs AS j
					WHERE j.state = 'running' AND j.processor = p.id GROUP BY j.type) AS r)
			FROM processors AS p
			WHERE p.last_seen >= ?
			ORDER BY p.id`, ms(seenSince))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				p                                model.Processor
				labels, quota, presence, running string
				lastSeen                         int64
				started                          sql.NullInt64
			)
			if err := rows.Scan(&p.ID, &p.Host, &labels, &quota, &presence, &p.Draining, &lastSeen, &started, &running); err != nil {
				return err
			}
			var err error
			if p.Labels, err = decodeMap[string](labels); err != nil {
				return err
			}
			if err := json.Unmarshal([]byte(presence), &p.ProcessorPresence); err != nil {
				return fmt.Errorf("processor %s: presence: %w", p.ID, err)
			}
			if p.RunningByType, err = decodeMap[int](running); err != nil {
				return err
			}
			for _, n := range p.RunningByType {
				p.Running += n
			}
			if p.Quota, err = decodeMap[int](quota); err != nil {
				return err
			}
			p.LastSeen = fromMS(lastSeen)
			if started.Valid {
				p.Started = fromMS(started.Int64)
			}
			out = append(out, p)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
