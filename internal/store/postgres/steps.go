package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
)

// stepColumns are step records of several instances as parallel arrays.
type stepColumns struct {
	instances                       []int64
	paths, ids, kinds, states, errs []string
	results                         []*string
	jobIDs, childIDs                []int64
	wakes, finishes                 []*time.Time
	starts                          []time.Time
}

func (c *stepColumns) add(instanceID int64, st model.Step) {
	c.instances = append(c.instances, instanceID)
	c.paths, c.ids, c.kinds = append(c.paths, st.Path), append(c.ids, st.ID), append(c.kinds, st.Kind)
	c.states, c.errs = append(c.states, string(st.State)), append(c.errs, st.Error)
	c.results = append(c.results, rawJSON(st.Result))
	c.jobIDs, c.childIDs = append(c.jobIDs, st.JobID), append(c.childIDs, st.ChildID)
	c.wakes, c.starts, c.finishes = append(c.wakes, st.WakeAt), append(c.starts, st.StartedAt), append(c.finishes, st.FinishedAt)
}

// upsertStepsSQL writes step records (of one or several instances) in one
// statement, from parallel arrays. A record without a job or child id (0)
// never clears the one stored: the worker sends a step's record again as
// it changes, and only the advance that submitted the job or child knows
// its id.
const upsertStepsSQL = `
INSERT INTO steps AS s (instance_id, path, step_id, kind, state, result, error,
	job_id, child_id, wake_at, started_at, finished_at)
SELECT u.instance_id, u.path, u.step_id, u.kind, u.state, u.result::json, u.error,
	u.job_id, u.child_id, u.wake_at, u.started_at, u.finished_at
FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
	$8::int8[], $9::int8[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[])
	AS u(instance_id, path, step_id, kind, state, result, error, job_id, child_id, wake_at, started_at, finished_at)
ON CONFLICT (instance_id, path) DO UPDATE SET
	step_id     = excluded.step_id,
	kind        = excluded.kind,
	state       = excluded.state,
	result      = excluded.result,
	error       = excluded.error,
	job_id      = COALESCE(NULLIF(excluded.job_id, 0), s.job_id),
	child_id    = COALESCE(NULLIF(excluded.child_id, 0), s.child_id),
	wake_at     = excluded.wake_at,
	started_at  = excluded.started_at,
	finished_at = excluded.finished_at`

func (c *stepColumns) upsert(ctx context.Context, tx pgx.Tx) error {
	if len(c.paths) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, upsertStepsSQL, c.instances, c.paths, c.ids, c.kinds, c.states, c.results, c.errs,
		c.jobIDs, c.childIDs, c.wakes, c.starts, c.finishes)
	return err
}

// upsertSteps writes steps (paths unique) of an instance.
func upsertSteps(ctx context.Context, tx pgx.Tx, instanceID int64, steps []model.Step) error {
	var c stepColumns
	for _, st := range steps {
		c.add(instanceID, st)
	}
	return c.upsert(ctx, tx)
}

// stepIDs writes the ids of an advance's jobs and children into its step
// records, and remembers those whose step is not among them.
type stepIDs struct {
	steps  []model.Step
	byPath map[string]int
	// rest: path -> ids for steps stored earlier, not in this advance.
	rest map[string]*[2]int64
}

func newStepIDs(steps []model.Step) *stepIDs {
	ids := &stepIDs{steps: steps, byPath: make(map[string]int, len(steps)), rest: map[string]*[2]int64{}}
	for i, st := range steps {
		ids.byPath[st.Path] = i
	}
	return ids
}

// setJob records job id for the step at path.
func (s *stepIDs) setJob(path string, id int64) { s.set(path, 0, id) }

// setChild records child id for the step at path.
func (s *stepIDs) setChild(path string, id int64) { s.set(path, 1, id) }

func (s *stepIDs) set(path string, which int, id int64) {
	if path == "" {
		return
	}
	if i, ok := s.byPath[path]; ok {
		if which == 0 {
			s.steps[i].JobID = id
		} else {
			s.steps[i].ChildID = id
		}
		return
	}
	r := s.rest[path]
	if r == nil {
		r = &[2]int64{}
		s.rest[path] = r
	}
	r[which] = id
}

// storeRestSQL writes ids into stored steps (none is created: a job whose
// step was never recorded has nowhere to go).
const storeRestSQL = `
UPDATE steps s SET
	job_id   = COALESCE(NULLIF(u.job_id, 0), s.job_id),
	child_id = COALESCE(NULLIF(u.child_id, 0), s.child_id)
FROM unnest($2::text[], $3::int8[], $4::int8[]) AS u(path, job_id, child_id)
WHERE s.instance_id = $1 AND s.path = u.path`

// storeRest writes the ids whose step is not in the advance into the
// stored steps of those paths.
func (s *stepIDs) storeRest(ctx context.Context, tx pgx.Tx, instanceID int64) error {
	if len(s.rest) == 0 {
		return nil
	}
	var (
		paths            []string
		jobIDs, childIDs []int64
	)
	for p, r := range s.rest {
		paths = append(paths, p)
		jobIDs = append(jobIDs, r[0])
		childIDs = append(childIDs, r[1])
	}
	_, err := tx.Exec(ctx, storeRestSQL, instanceID, paths, jobIDs, childIDs)
	return err
}
