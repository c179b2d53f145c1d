package sqlite

import (
	"context"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

var _ store.QueueCounter = (*Store)(nil)

// JobQueueCounts counts queued and running jobs per type and state.
func (s *Store) JobQueueCounts(ctx context.Context) (map[string]map[model.JobState]int, error) {
	counts := map[string]map[model.JobState]int{}
	err := s.read(ctx, "count queue", func(tx *txn) error {
		rows, err := tx.QueryContext(ctx, store.QueueCountsSQL)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				typ, state string
				n          int
			)
			if err := rows.Scan(&typ, &state, &n); err != nil {
				return err
			}
			if counts[typ] == nil {
				counts[typ] = map[model.JobState]int{}
			}
			counts[typ][model.JobState(state)] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return counts, nil
}
