package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

var _ store.LogStore = (*Store)(nil)

// LogAppend stores log lines of an instance or a job, up to the bound.
func (s *Store) LogAppend(ctx context.Context, instanceID, jobID int64, lines []model.LogEntry, now time.Time) error {
	if len(lines) == 0 {
		return nil
	}
	lines = store.NormalizeLog(lines, now)
	return s.tx(ctx, "append log", func(tx pgx.Tx) error {
		var err error
		if jobID != 0 {
			err = tx.QueryRow(ctx, `SELECT COALESCE(instance_id, 0) FROM jobs WHERE id = $1`, jobID).Scan(&instanceID)
		} else {
			err = tx.QueryRow(ctx, `SELECT id FROM instances WHERE id = $1`, instanceID).Scan(&instanceID)
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM log_lines WHERE instance_id = $1 AND job_id = $2 AND dropped = 0`,
			instanceID, jobID).Scan(&n); err != nil {
			return fmt.Errorf("count: %w", err)
		}
		keep := min(len(lines), max(store.MaxLogLines-n, 0))
		if keep > 0 {
			b := &pgx.Batch{}
			for _, l := range lines[:keep] {
				b.Queue(`INSERT INTO log_lines (instance_id, job_id, at, level, message) VALUES ($1, $2, $3, $4, $5)`,
					instanceID, jobID, l.At, l.Level, l.Message)
			}
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return fmt.Errorf("insert: %w", err)
			}
		}
		drop := len(lines) - keep
		if drop == 0 {
			return nil
		}
		tag, err := tx.Exec(ctx, `UPDATE log_lines SET dropped = dropped + $3, message = (dropped + $3)::text || ' lines dropped'
			WHERE instance_id = $1 AND job_id = $2 AND dropped > 0`, instanceID, jobID, drop)
		if err != nil || tag.RowsAffected() > 0 {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO log_lines (instance_id, job_id, at, level, message, dropped) VALUES ($1, $2, $3, $4, $5, $6)`,
			instanceID, jobID, now, model.LogWarn, fmt.Sprintf("%d lines dropped", drop), drop)
		return err
	})
}

// LogList returns the lines of a job, or of an instance with its jobs'.
func (s *Store) LogList(ctx context.Context, f model.LogFilter) ([]model.LogLine, error) {
	col, id := "instance_id", f.InstanceID
	if f.JobID != 0 {
		col, id = "job_id", f.JobID
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, instance_id, job_id, at, level, message, dropped FROM log_lines
		WHERE `+col+` = $1 AND seq > $2 ORDER BY seq LIMIT $3`, id, f.After, store.LogLimit(f.Limit))
	if err != nil {
		return nil, s.wrap("list log", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (model.LogLine, error) {
		var l model.LogLine
		err := r.Scan(&l.Seq, &l.InstanceID, &l.JobID, &l.At, &l.Level, &l.Message, &l.Dropped)
		l.At = l.At.UTC()
		return l, err
	})
	return out, s.wrap("list log", err)
}
