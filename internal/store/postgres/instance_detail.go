package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// InstanceDetails reads, in one REPEATABLE READ snapshot and four
// statements whatever the number of ids, the instances, their steps, and
// the jobs and children their running steps wait for.
func (s *Store) InstanceDetails(ctx context.Context, ids []int64) ([]model.InstanceDetail, error) {
	const op = "instance details"
	if len(ids) == 0 {
		return []model.InstanceDetail{}, nil
	}
	var out []model.InstanceDetail
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	err := s.txOpts(ctx, op, opts, func(tx pgx.Tx) error {
		var err error
		out, err = readDetails(ctx, tx, ids)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func readDetails(ctx context.Context, tx pgx.Tx, ids []int64) ([]model.InstanceDetail, error) {
	insts, err := queryInstances(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	d := store.NewDetailSet(ids, insts)
	rows, err := tx.Query(ctx, `SELECT instance_id, `+stepCols+` FROM steps
		WHERE instance_id = ANY($1::int8[]) ORDER BY instance_id, path`, ids)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var owner int64
		st, err := scanStep(prefixed{rows, &owner})
		if err != nil {
			rows.Close()
			return nil, err
		}
		d.AddStep(owner, st)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(d.JobIDs) > 0 {
		rows, err := tx.Query(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ANY($1::int8[]) ORDER BY id`, d.JobIDs)
		if err != nil {
			return nil, err
		}
		jobs, err := collectJobs(rows)
		if err != nil {
			return nil, err
		}
		d.AddJobs(jobs)
	}
	if len(d.ChildIDs) > 0 {
		children, err := queryInstances(ctx, tx, d.ChildIDs)
		if err != nil {
			return nil, err
		}
		d.AddChildren(children)
	}
	return d.Details(), nil
}

// queryInstances reads the instances of ids, by id.
func queryInstances(ctx context.Context, tx pgx.Tx, ids []int64) (map[int64]model.Instance, error) {
	rows, err := tx.Query(ctx, `SELECT `+instanceCols+` FROM instances WHERE id = ANY($1::int8[])`, ids)
	if err != nil {
		return nil, err
	}
	list, err := collectInstances(rows)
	if err != nil {
		return nil, err
	}
	return store.InstancesByID(list), nil
}

// prefixed is a row whose first column goes to first, the rest to the
// destinations Scan is given: a scanner of a select list reads rows that
// carry one more column in front.
type prefixed struct {
	pgx.Row
	first any
}

func (p prefixed) Scan(dest ...any) error {
	return p.Row.Scan(append([]any{p.first}, dest...)...)
}
