package sqlite

import (
	"context"
	"encoding/json"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// InstanceDetails reads, in one read transaction (one snapshot) and four
// statements whatever the number of ids, the instances, their steps, and
// the jobs and children their running steps wait for.
func (s *Store) InstanceDetails(ctx context.Context, ids []int64) ([]model.InstanceDetail, error) {
	out := []model.InstanceDetail{}
	if len(ids) == 0 {
		return out, nil
	}
	err := s.read(ctx, "instance details", func(tx *txn) error {
		insts, err := queryInstances(ctx, tx, ids)
		if err != nil {
			return err
		}
		d := store.NewDetailSet(ids, insts)
		rows, err := tx.QueryContext(ctx, `SELECT instance_id, `+stepCols+` FROM steps
			WHERE instance_id IN (SELECT value FROM json_each(?)) ORDER BY instance_id, path`, idsJSON(ids))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var owner int64
			st, err := scanStep(prefixed{rows, &owner})
			if err != nil {
				return err
			}
			d.AddStep(owner, st)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(d.JobIDs) > 0 {
			rows, err := tx.QueryContext(ctx, `SELECT `+jobCols+` FROM jobs
				WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id`, idsJSON(d.JobIDs))
			if err != nil {
				return err
			}
			jobs, err := scanJobs(rows)
			if err != nil {
				return err
			}
			d.AddJobs(jobs)
		}
		if len(d.ChildIDs) > 0 {
			children, err := queryInstances(ctx, tx, d.ChildIDs)
			if err != nil {
				return err
			}
			d.AddChildren(children)
		}
		out = d.Details()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// queryInstances reads the instances of ids, by id.
func queryInstances(ctx context.Context, tx *txn, ids []int64) (map[int64]model.Instance, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+instCols+` FROM instances WHERE id IN (SELECT value FROM json_each(?))`,
		idsJSON(ids))
	if err != nil {
		return nil, err
	}
	list, err := scanInstances(rows)
	if err != nil {
		return nil, err
	}
	return store.InstancesByID(list), nil
}

// idsJSON is ids as one JSON array: one query argument, so the query
// text is the same whatever the number of ids (prepared once, see
// stmtcache.go).
func idsJSON(ids []int64) string {
	b, _ := json.Marshal(ids) // []int64 always marshals
	return string(b)
}

// prefixed is a row whose first column goes to first, the rest to the
// destinations Scan is given: a scanner of a select list reads rows that
// carry one more column in front.
type prefixed struct {
	scanner
	first any
}

func (p prefixed) Scan(dest ...any) error {
	return p.scanner.Scan(append([]any{p.first}, dest...)...)
}
