package workflow

import (
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/template"
)

// sim plays the server and the processors for Decide: it applies each
// advance like the store does and finishes the jobs one round after they
// were submitted, so concurrency limits are observable.
type sim struct {
	t         *testing.T
	templates map[string]*template.Template
	inst      model.Instance
	tpl       *template.Template
	steps     map[string]model.Step
	jobs      map[int64]model.Job
	children  map[int64]*sim
	nextID    *int64
	now       time.Time
	// outcome decides a job's end: nil error = success with the result.
	outcome func(j model.Job) (json.RawMessage, error)
	// maxActive is the most jobs queued at once.
	maxActive int
	rounds    int
	advances  []model.Advance
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func parse(t *testing.T, src string) *template.Template {
	t.Helper()
	tpl, err := template.Parse([]byte(src), template.ParseOptions{})
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return tpl
}

func newSim(t *testing.T, tpl *template.Template, args map[string]any) *sim {
	t.Helper()
	ab, _ := json.Marshal(args)
	id := int64(1)
	s := &sim{t: t, tpl: tpl, templates: map[string]*template.Template{tpl.Name: tpl},
		inst:  model.Instance{ID: 1, Name: "i1", Template: tpl.Name, Args: ab, State: model.InstancePending, Worker: "w", Epoch: 1, Priority: 10},
		steps: map[string]model.Step{}, jobs: map[int64]model.Job{}, children: map[int64]*sim{}, nextID: &id, now: t0,
		outcome: func(model.Job) (json.RawMessage, error) { return json.RawMessage(`{"ok":true}`), nil },
	}
	return s
}

func (s *sim) input() Input {
	in := Input{Template: s.tpl, Instance: s.inst, Jobs: map[int64]model.Job{}, Children: map[int64]model.Instance{}, Now: s.now}
	paths := make([]string, 0, len(s.steps))
	for p := range s.steps {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		in.Steps = append(in.Steps, s.steps[p])
	}
	for id, j := range s.jobs {
		in.Jobs[id] = j
	}
	for id, c := range s.children {
		in.Children[id] = c.inst
	}
	return in
}

// step runs one decide-and-apply round; it returns false once final.
func (s *sim) step() bool {
	s.t.Helper()
	s.rounds++
	// Jobs submitted in an earlier round end now.
	for id, j := range s.jobs {
		if j.State.Final() {
			continue
		}
		res, err := s.outcome(j)
		if err != nil {
			j.State, j.Error = model.JobFailed, err.Error()
		} else {
			j.State, j.Result = model.JobSucceeded, res
		}
		s.jobs[id] = j
	}
	for _, c := range s.children {
		for !c.inst.State.Final() && c.step() {
		}
	}
	in := s.input()
	adv, err := Decide(in)
	if err != nil {
		s.t.Fatalf("decide: %v", err)
	}
	// Determinism: the same input decides the same advance.
	again, _ := Decide(in)
	a, _ := json.Marshal(adv)
	b, _ := json.Marshal(again)
	if string(a) != string(b) {
		s.t.Fatalf("decide is not deterministic:\n%s\n%s", a, b)
	}
	s.advances = append(s.advances, adv)
	s.apply(adv)
	active := 0
	for _, j := range s.jobs {
		if !j.State.Final() {
			active++
		}
	}
	s.maxActive = max(s.maxActive, active)
	if adv.WakeAt != nil && adv.WakeAt.After(s.now) {
		s.now = *adv.WakeAt
	}
	return !s.inst.State.Final()
}

func (s *sim) apply(a model.Advance) {
	for _, st := range a.Steps {
		old := s.steps[st.Path]
		if st.JobID == 0 {
			st.JobID = old.JobID
		}
		if st.ChildID == 0 {
			st.ChildID = old.ChildID
		}
		s.steps[st.Path] = st
	}
	for _, spec := range a.Jobs {
		dup := false
		for _, j := range s.jobs {
			if j.Key == spec.Key {
				dup = true
			}
		}
		if dup {
			s.t.Fatalf("job key %s submitted twice", spec.Key)
		}
		*s.nextID++
		j := model.Job{ID: *s.nextID, Type: spec.Type, Params: spec.Params, Priority: spec.Priority, State: model.JobQueued, Key: spec.Key, Step: spec.Step, InstanceID: spec.InstanceID}
		s.jobs[j.ID] = j
		st := s.steps[spec.Step]
		st.JobID = j.ID
		s.steps[spec.Step] = st
	}
	for _, spec := range a.Children {
		*s.nextID++
		tpl := s.templates[spec.Template]
		if tpl == nil {
			s.t.Fatalf("unknown child template %s", spec.Template)
		}
		c := &sim{t: s.t, tpl: tpl, templates: s.templates, steps: map[string]model.Step{}, jobs: map[int64]model.Job{},
			children: map[int64]*sim{}, nextID: s.nextID, now: s.now, outcome: s.outcome,
			inst: model.Instance{ID: *s.nextID, Name: spec.Name, Template: spec.Template, Args: spec.Args, State: model.InstancePending, Worker: "w", Epoch: 1, ParentID: spec.ParentID, ParentStep: spec.ParentStep}}
		s.children[c.inst.ID] = c
		st := s.steps[spec.ParentStep]
		st.ChildID = c.inst.ID
		s.steps[spec.ParentStep] = st
	}
	for _, id := range a.CancelJobs {
		j := s.jobs[id]
		if !j.State.Final() {
			j.State = model.JobCanceled
			s.jobs[id] = j
		}
	}
	s.inst.State, s.inst.Vars, s.inst.Output, s.inst.Error, s.inst.Progress, s.inst.Current = a.State, a.Vars, a.Output, a.Error, a.Progress, a.Current
}

// run drives the instance to a final state.
func (s *sim) run() model.Instance {
	s.t.Helper()
	for i := 0; s.step(); i++ {
		if i > 200 {
			s.t.Fatalf("instance not final after 200 rounds; current %v", s.inst.Current)
		}
	}
	return s.inst
}

func (s *sim) vars() map[string]any {
	var v map[string]any
	_ = json.Unmarshal(s.inst.Vars, &v)
	return v
}

func (s *sim) jobsOfType(typ string) []model.Job {
	var out []model.Job
	for _, j := range s.jobs {
		if j.Type == typ {
			out = append(out, j)
		}
	}
	sort.Slice(out, func(i, k int) bool { return out[i].ID < out[k].ID })
	return out
}

func failWhen(param string) func(j model.Job) (json.RawMessage, error) {
	return func(j model.Job) (json.RawMessage, error) {
		var p map[string]any
		_ = json.Unmarshal(j.Params, &p)
		if p[param] == true {
			return nil, fmt.Errorf("asked to fail")
		}
		return json.RawMessage(`{"n":` + fmt.Sprint(j.ID) + `}`), nil
	}
}
