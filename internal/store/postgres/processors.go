package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
)

// ProcessorUpsert records a processor's presence (LastSeen = now), replacing
// what it says about itself (host, labels, quota, presence, draining, start
// time), and registers the types of its quota, in one transaction.
func (s *Store) ProcessorUpsert(ctx context.Context, p model.Processor, now time.Time) error {
	if p.ID == "" {
		return s.wrap("upsert processor", model.Invalid("id", "required"))
	}
	labels, err := json.Marshal(nonNil(p.Labels))
	if err != nil {
		return s.wrap("upsert processor", err)
	}
	presence, err := json.Marshal(p.ProcessorPresence)
	if err != nil {
		return s.wrap("upsert processor", err)
	}
	quota, err := json.Marshal(nonNil(p.Quota))
	if err != nil {
		return s.wrap("upsert processor", err)
	}
	var started *time.Time
	if !p.Started.IsZero() {
		started = &p.Started
	}
	types := uniqueNames(slices.Collect(maps.Keys(p.Quota)))
	return s.tx(ctx, "upsert processor", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO processors (id, host, labels, quota, presence, draining, last_seen, started_at)
			VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6, $7, $8)
			ON CONFLICT (id) DO UPDATE SET
				host       = excluded.host,
				labels     = excluded.labels,
				quota      = excluded.quota,
				presence   = excluded.presence,
				draining   = excluded.draining,
				last_seen  = excluded.last_seen,
				started_at = excluded.started_at`,
			p.ID, p.Host, string(labels), string(quota), string(presence), p.Draining, now, started); err != nil {
			return err
		}
		if len(types) == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO job_types (name)
			SELECT n FROM unnest($1::text[]) AS n ORDER BY n
			ON CONFLICT (name) DO NOTHING`, types)
		return err
	})
}

// nonNil returns m, or an empty map for nil, so it encodes as {}.
func nonNil[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

// ProcessorList returns processors seen at or after seenSince, by id, with
// Running counting their running jobs, RunningByType per type.
func (s *Store) ProcessorList(ctx context.Context, seenSince time.Time) ([]model.Processor, error) {
	// The lateral count uses the partial index jobs_running_processor.
	rows, err := s.pool.Query(ctx, `
		SELECT p.id, p.host, p.labels, p.quota, p.presence, p.draining, p.last_seen, p.started_at,
			coalesce(r.by_type, '{}'::jsonb)
		FROM processors p
		CROSS JOIN LATERAL (
			SELECT jsonb_object_agg(t.type, t.n) AS by_type FROM (
				SELECT j.type, count(*) AS n FROM jobs j
				WHERE j.state = 'running' AND j.processor = p.id GROUP BY j.type) t
		) r
		WHERE p.last_seen >= $1
		ORDER BY p.id`, seenSince)
	if err != nil {
		return nil, s.wrap("list processors", err)
	}
	out := []model.Processor{}
	var (
		p                                model.Processor
		labels, quota, presence, running []byte
		started                          *time.Time
	)
	_, err = pgx.ForEachRow(rows, []any{&p.ID, &p.Host, &labels, &quota, &presence, &p.Draining, &p.LastSeen, &started, &running}, func() error {
		q := p
		q.Labels, q.Quota, q.ProcessorPresence = nil, nil, model.ProcessorPresence{}
		if err := json.Unmarshal(labels, &q.Labels); err != nil {
			return fmt.Errorf("processor %s: labels: %w", p.ID, err)
		}
		if err := json.Unmarshal(presence, &q.ProcessorPresence); err != nil {
			return fmt.Errorf("processor %s: presence: %w", p.ID, err)
		}
		if err := json.Unmarshal(quota, &q.Quota); err != nil {
			return fmt.Errorf("processor %s: quota: %w", p.ID, err)
		}
		if err := json.Unmarshal(running, &q.RunningByType); err != nil {
			return fmt.Errorf("processor %s: running jobs per type: %w", p.ID, err)
		}
		if len(q.Labels) == 0 {
			q.Labels = nil
		}
		if len(q.Quota) == 0 {
			q.Quota = nil
		}
		if len(q.RunningByType) == 0 {
			q.RunningByType = nil
		}
		for _, n := range q.RunningByType {
			q.Running += n
		}
		q.LastSeen = q.LastSeen.UTC()
		q.Started = time.Time{}
		if started != nil {
			q.Started = started.UTC()
		}
		out = append(out, q)
		return nil
	})
	if err != nil {
		return nil, s.wrap("list processors", err)
	}
	return out, nil
}
