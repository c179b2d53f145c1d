package postgres

import (
	"context"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

var _ store.QueueCounter = (*Store)(nil)

// JobQueueCounts counts queued and running jobs per type and state.
func (s *Store) JobQueueCounts(ctx context.Context) (map[string]map[model.JobState]int, error) {
	const op = "count queue"
	rows, err := s.pool.Query(ctx, store.QueueCountsSQL)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	counts := map[string]map[model.JobState]int{}
	for rows.Next() {
		var (
			typ, state string
			n          int
		)
		if err := rows.Scan(&typ, &state, &n); err != nil {
			return nil, s.wrap(op, err)
		}
		if counts[typ] == nil {
			counts[typ] = map[model.JobState]int{}
		}
		counts[typ][model.JobState(state)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(op, err)
	}
	return counts, nil
}
