package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
)

// InstanceDetails reads, in one REPEATABLE READ snapshot and four
// statements whatever the number of ids, the instances, their steps, and
// the jobs and children their running steps wait for.
func (s *Store) InstanceDetails(ctx context.Context, ids []int64) ([]model.InstanceDetail, error) {
	const op = "instance details"
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
	out := []model.InstanceDetail{}
	if len(ids) == 0 {
		return out, nil
	}
	insts, err := queryInstances(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	found := make(map[int64]int, len(insts)) // instance id → index in out
	for _, id := range ids {
		inst, ok := insts[id]
		if _, dup := found[id]; !ok || dup {
			continue
		}
		found[id] = len(out)
		out = append(out, model.InstanceDetail{Instance: inst, Steps: []model.Step{}})
	}
	rows, err := tx.Query(ctx, `SELECT instance_id, `+stepCols+` FROM steps
		WHERE instance_id = ANY($1::int8[]) ORDER BY instance_id, path`, ids)
	if err != nil {
		return nil, err
	}
	var jobIDs, childIDs []int64
	jobOwner := map[int64]int{}   // job id → index in out
	childOwner := map[int64]int{} // child id → index in out
	for rows.Next() {
		var owner int64
		st, err := scanStep(prefixed{rows, &owner})
		if err != nil {
			rows.Close()
			return nil, err
		}
		i, ok := found[owner]
		if !ok {
			continue
		}
		out[i].Steps = append(out[i].Steps, st)
		if st.State != model.StepRunning {
			continue
		}
		if st.JobID != 0 {
			jobIDs = append(jobIDs, st.JobID)
			jobOwner[st.JobID] = i
		}
		if st.ChildID != 0 {
			childIDs = append(childIDs, st.ChildID)
			childOwner[st.ChildID] = i
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(jobIDs) > 0 {
		rows, err := tx.Query(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ANY($1::int8[]) ORDER BY id`, jobIDs)
		if err != nil {
			return nil, err
		}
		jobs, err := collectJobs(rows)
		if err != nil {
			return nil, err
		}
		for _, j := range jobs {
			i := jobOwner[j.ID]
			out[i].Jobs = append(out[i].Jobs, j)
		}
	}
	if len(childIDs) > 0 {
		children, err := queryInstances(ctx, tx, childIDs)
		if err != nil {
			return nil, err
		}
		for _, id := range childIDs {
			if c, ok := children[id]; ok {
				i := childOwner[id]
				out[i].Children = append(out[i].Children, c)
			}
		}
	}
	return out, nil
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
	m := make(map[int64]model.Instance, len(list))
	for _, inst := range list {
		m[inst.ID] = inst
	}
	return m, nil
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
