package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

var _ store.LogStore = (*Store)(nil)

// LogAppend stores log lines of an instance or a job, up to the bound.
// The write lock makes the bound exact.
func (s *Store) LogAppend(ctx context.Context, instanceID, jobID int64, lines []model.LogEntry, now time.Time) error {
	if len(lines) == 0 {
		return nil
	}
	lines = store.NormalizeLog(lines, now)
	return s.write(ctx, "append log", func(tx *txn) error {
		var err error
		if jobID != 0 {
			err = tx.QueryRowContext(ctx, `SELECT instance_id FROM jobs WHERE id = ?`, jobID).Scan(&instanceID)
		} else {
			err = tx.QueryRowContext(ctx, `SELECT id FROM instances WHERE id = ?`, instanceID).Scan(&instanceID)
		}
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM log_lines WHERE instance_id = ? AND job_id = ? AND dropped = 0`,
			instanceID, jobID).Scan(&n); err != nil {
			return fmt.Errorf("count: %w", err)
		}
		keep := min(len(lines), max(store.MaxLogLines-n, 0))
		for _, l := range lines[:keep] {
			if _, err := tx.ExecContext(ctx, `INSERT INTO log_lines (instance_id, job_id, at, level, message) VALUES (?, ?, ?, ?, ?)`,
				instanceID, jobID, ms(l.At), l.Level, l.Message); err != nil {
				return fmt.Errorf("insert: %w", err)
			}
		}
		drop := len(lines) - keep
		if drop == 0 {
			return nil
		}
		n, err = execCount(ctx, tx, `UPDATE log_lines SET dropped = dropped + ?, message = CAST(dropped + ? AS TEXT) || ' lines dropped'
			WHERE instance_id = ? AND job_id = ? AND dropped > 0`, drop, drop, instanceID, jobID)
		if err != nil || n > 0 {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO log_lines (instance_id, job_id, at, level, message, dropped) VALUES (?, ?, ?, ?, ?, ?)`,
			instanceID, jobID, ms(now), model.LogWarn, fmt.Sprintf("%d lines dropped", drop), drop)
		return err
	})
}

// LogList returns the lines of a job, or of an instance with its jobs'.
func (s *Store) LogList(ctx context.Context, f model.LogFilter) ([]model.LogLine, error) {
	col, id := "instance_id", f.InstanceID
	if f.JobID != 0 {
		col, id = "job_id", f.JobID
	}
	var out []model.LogLine
	err := s.read(ctx, "list log", func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, `SELECT seq, instance_id, job_id, at, level, message, dropped FROM log_lines
			WHERE `+col+` = ? AND seq > ? ORDER BY seq LIMIT ?`, id, f.After, store.LogLimit(f.Limit))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l model.LogLine
			var at int64
			if err := rows.Scan(&l.Seq, &l.InstanceID, &l.JobID, &at, &l.Level, &l.Message, &l.Dropped); err != nil {
				return err
			}
			l.At = fromMS(at)
			out = append(out, l)
		}
		return rows.Err()
	})
	return out, err
}
