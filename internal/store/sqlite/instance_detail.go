package sqlite

import (
	"context"

	"github.com/dpe-engine/dpe/internal/model"
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
		out = out[:0]
		insts, err := queryInstances(ctx, tx, ids)
		if err != nil {
			return err
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
		rows, err := tx.QueryContext(ctx, `SELECT instance_id, `+stepCols+` FROM steps
			WHERE instance_id IN (`+placeholders(len(ids))+`) ORDER BY instance_id, path`, int64Args(ids)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		var jobIDs, childIDs []int64
		jobOwner := map[int64]int{}   // job id → index in out
		childOwner := map[int64]int{} // child id → index in out
		for rows.Next() {
			var owner int64
			st, err := scanStep(prefixed{rows, &owner})
			if err != nil {
				return err
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
		if err := rows.Err(); err != nil {
			return err
		}
		if len(jobIDs) > 0 {
			rows, err := tx.QueryContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id IN (`+placeholders(len(jobIDs))+`) ORDER BY id`,
				int64Args(jobIDs)...)
			if err != nil {
				return err
			}
			jobs, err := scanJobs(rows)
			if err != nil {
				return err
			}
			for _, j := range jobs {
				i := jobOwner[j.ID]
				out[i].Jobs = append(out[i].Jobs, j)
			}
		}
		if len(childIDs) > 0 {
			children, err := queryInstances(ctx, tx, childIDs)
			if err != nil {
				return err
			}
			for _, id := range childIDs {
				if c, ok := children[id]; ok {
					i := childOwner[id]
					out[i].Children = append(out[i].Children, c)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// queryInstances reads the instances of ids, by id.
func queryInstances(ctx context.Context, tx *txn, ids []int64) (map[int64]model.Instance, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+instCols+` FROM instances WHERE id IN (`+placeholders(len(ids))+`)`,
		int64Args(ids)...)
	if err != nil {
		return nil, err
	}
	list, err := scanInstances(rows)
	if err != nil {
		return nil, err
	}
	m := make(map[int64]model.Instance, len(list))
	for _, inst := range list {
		m[inst.ID] = inst
	}
	return m, nil
}

// int64Args turns ids into query arguments.
func int64Args(ids []int64) []any {
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return args
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
