package workflow

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/template"
)

// job submits the step's job on first visit and ends with it.
func (r *run) job(a *template.Activity, path string, sc scope, rec model.Step, seen bool) result {
	if !seen {
		params, err := a.Params.Eval(r.env(path, sc))
		if err != nil {
			r.done++
			return r.end(r.startRecord(a, path), failure(a.ID, "params: %v", err), nil)
		}
		if params == nil {
			params = map[string]any{}
		}
		pb, err := jsonMarshal(params)
		if err != nil {
			r.done++
			return r.end(r.startRecord(a, path), failure(a.ID, "params: %v", err), nil)
		}
		in := r.in.Instance
		spec := model.JobSpec{
			Type: a.JobType, Params: pb,
			Priority:    max(0, min(model.MaxPriority, in.Priority+a.Priority)),
			MaxAttempts: a.Retry.MaxAttempts, Backoff: model.Duration(a.Retry.Backoff), BackoffMax: model.Duration(a.Retry.BackoffMax),
			Timeout: model.Duration(a.Timeout), Selector: a.Selector,
			InstanceID: in.ID, Step: path, Key: JobKey(in.ID, path),
		}
		r.out.Jobs = append(r.out.Jobs, spec)
		r.record(r.startRecord(a, path))
		r.running(path)
		return result{st: pending}
	}
	j, ok := r.in.Jobs[rec.JobID]
	if !ok {
		if rec.JobID == 0 {
			r.done++
			return r.end(rec, failure(a.ID, "job was never recorded for this step"), nil)
		}
		// The job is not in the input: it was purged or the caller did not
		// load it. Wait rather than guess.
		r.running(path)
		return result{st: pending}
	}
	switch j.State {
	case model.JobSucceeded:
		r.done++
		var v any
		if len(j.Result) > 0 {
			v = json.RawMessage(j.Result)
		}
		return r.end(rec, okResult, v)
	case model.JobFailed, model.JobCanceled:
		r.done++
		msg := j.Error
		if msg == "" {
			msg = "job " + string(j.State)
		}
		return r.end(rec, failure(a.ID, "%s", msg), nil)
	}
	r.running(path)
	return result{st: pending}
}

// child starts the sub-workflow on first visit and ends with it.
func (r *run) child(a *template.Activity, path string, sc scope, rec model.Step, seen bool) result {
	if !seen {
		args, err := a.Args.Eval(r.env(path, sc))
		if err != nil {
			r.done++
			return r.end(r.startRecord(a, path), failure(a.ID, "args: %v", err), nil)
		}
		if args == nil {
			args = map[string]any{}
		}
		ab, err := jsonMarshal(args)
		if err != nil {
			r.done++
			return r.end(r.startRecord(a, path), failure(a.ID, "args: %v", err), nil)
		}
		in := r.in.Instance
		r.out.Children = append(r.out.Children, model.InstanceSpec{
			Template: a.Template, Name: ChildName(in.Name, path), Args: ab, Priority: in.Priority,
			ParentID: in.ID, ParentStep: path,
		})
		r.record(r.startRecord(a, path))
		r.running(path)
		return result{st: pending}
	}
	c, ok := r.in.Children[rec.ChildID]
	if !ok || !c.State.Final() {
		r.running(path)
		return result{st: pending}
	}
	r.done++
	if c.State == model.InstanceSucceeded {
		var v any
		if len(c.Output) > 0 {
			v = json.RawMessage(c.Output)
		}
		return r.end(rec, okResult, v)
	}
	msg := c.Error
	if msg == "" {
		msg = "sub-workflow " + string(c.State)
	}
	return r.end(rec, failure(a.ID, "sub-workflow %s: %s", c.Name, msg), nil)
}

// delay waits until its timer passes.
func (r *run) delay(a *template.Activity, path string, sc scope, rec model.Step, seen bool) result {
	if !seen {
		d, err := a.Delay.EvalDuration(r.env(path, sc))
		if err != nil {
			r.done++
			return r.end(r.startRecord(a, path), failure(a.ID, "delay: %v", err), nil)
		}
		rec = r.startRecord(a, path)
		until := r.in.Now.Add(d)
		rec.WakeAt = &until
		r.record(rec)
	}
	if rec.WakeAt == nil || !r.in.Now.Before(*rec.WakeAt) {
		r.done++
		return r.end(rec, okResult, nil)
	}
	r.setWake(*rec.WakeAt)
	r.running(path)
	return result{st: pending}
}

// set assigns variables, all evaluated against the variables before it.
func (r *run) set(a *template.Activity, path string, sc scope) result {
	env := r.env(path, sc)
	vals := make(map[string]any, len(a.Set))
	for k, v := range a.Set {
		x, err := v.Eval(env)
		if err != nil {
			r.done++
			return r.end(r.startRecord(a, path), failure(a.ID, "set.%s: %v", k, err), nil)
		}
		vals[k] = x
	}
	for k, v := range vals {
		r.vars[k] = v
	}
	r.done++
	return r.end(r.startRecord(a, path), okResult, vals)
}

func (r *run) running(path string) {
	r.active++
	r.current = append(r.current, path)
}

// jsonMarshal encodes v; errors name the value's type.
func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cannot encode %T as JSON: %w", v, err)
	}
	return b, nil
}

// jsonUnmarshalNumber decodes keeping integers exact (json.Number becomes
// int64 or float64 so expressions compare numbers naturally).
func jsonUnmarshalNumber(b []byte, v any) error {
	if len(b) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if p, ok := v.(*any); ok {
		*p = fromNumbers(*p)
	}
	return nil
}

func fromNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = fromNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = fromNumbers(e)
		}
	}
	return v
}
