package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/model"
)

// upsertStepsSQL writes an advance's step records in one statement, from
// parallel arrays. A record without a job or child id (0) never clears the
// one stored: the worker sends a step's record again as it changes, and
// only the advance that submitted the job or child knows its id.
const upsertStepsSQL = `
INSERT INTO steps AS s (instance_id, path, step_id, kind, state, result, error,
	job_id, child_id, wake_at, started_at, finished_at)
SELECT $1, u.path, u.step_id, u.kind, u.state, u.result::json, u.error,
	u.job_id, u.child_id, u.wake_at, u.started_at, u.finished_at
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
	$8::int8[], $9::int8[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[])
	AS u(path, step_id, kind, state, result, error, job_id, child_id, wake_at, started_at, finished_at)
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

// upsertSteps writes steps (paths unique) of an instance.
func upsertSteps(ctx context.Context, tx pgx.Tx, instanceID int64, steps []model.Step) error {
	if len(steps) == 0 {
		return nil
	}
	n := len(steps)
	var (
		paths, ids, kinds, states, errs = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		results                         = make([]*string, n)
		jobIDs, childIDs                = make([]int64, n), make([]int64, n)
		wakes, finishes                 = make([]*time.Time, n), make([]*time.Time, n)
		starts                          = make([]time.Time, n)
	)
	for i, st := range steps {
		paths[i], ids[i], kinds[i], states[i], errs[i] = st.Path, st.ID, st.Kind, string(st.State), st.Error
		results[i] = rawJSON(st.Result)
		jobIDs[i], childIDs[i] = st.JobID, st.ChildID
		wakes[i], starts[i], finishes[i] = st.WakeAt, st.StartedAt, st.FinishedAt
	}
	_, err := tx.Exec(ctx, upsertStepsSQL, instanceID, paths, ids, kinds, states, results, errs,
		jobIDs, childIDs, wakes, starts, finishes)
	return err
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
