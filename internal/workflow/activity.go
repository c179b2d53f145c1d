package workflow

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/template"
)

// scope is what an activity sees besides the instance: loop variables and
// the error being handled.
type scope struct {
	locals map[string]any
	err    *template.ErrorView
}

func (s scope) with(name string, v any) scope {
	l := make(map[string]any, len(s.locals)+1)
	for k, x := range s.locals {
		l[k] = x
	}
	l[name] = v
	return scope{locals: l, err: s.err}
}

func (s scope) withErr(e *template.ErrorView) scope { return scope{locals: s.locals, err: e} }

// env builds the expression environment at prefix: steps.<id> sees the
// records outside any foreach and those of the iterations prefix lies in,
// the innermost winning.
func (r *run) env(prefix string, sc scope) template.Env {
	views := make(map[string]template.StepView, len(r.steps))
	depth := make(map[string]int, len(r.steps))
	for p, s := range r.steps {
		iter := ""
		if i := strings.LastIndex(p, "]"); i >= 0 {
			iter = p[:i+1]
		}
		if iter != "" && prefix != iter && !strings.HasPrefix(prefix, iter+"/") && !strings.HasPrefix(prefix, iter+"[") {
			continue
		}
		if d, seen := depth[s.ID]; seen && d > len(iter) {
			continue
		}
		depth[s.ID] = len(iter)
		views[s.ID] = template.StepView{Result: decodeResult(s.Result), State: string(s.State)}
	}
	in := r.in.Instance
	return template.Env{
		Args: r.args, Vars: r.vars, Steps: views, Locals: sc.locals, Error: sc.err,
		Instance: template.InstanceView{ID: in.ID, Name: in.Name, Priority: in.Priority},
		Context:  r.in.Context,
	}
}

func decodeResult(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	var v any
	if err := jsonUnmarshalNumber(b, &v); err != nil {
		return nil
	}
	return v
}

// list runs activities as a sequence: each starts when the one before
// succeeded.
func (r *run) list(acts []*template.Activity, prefix string, sc scope) result {
	for _, a := range acts {
		res := r.one(a, prefix, sc)
		if res.st != ok {
			return res
		}
	}
	return okResult
}

// one runs an activity and applies its on_error policy.
func (r *run) one(a *template.Activity, prefix string, sc scope) result {
	path := join(prefix, a.ID)
	res := r.raw(a, path, sc)
	if res.st != failed {
		return res
	}
	switch a.OnError.Action {
	case template.OnErrorContinue:
		return okResult
	case template.OnErrorSteps:
		return r.list(a.OnError.Steps, prefix, sc.withErr(res.err))
	}
	return res
}

// raw runs an activity: from its record when it has ended, else one more
// step of its kind.
func (r *run) raw(a *template.Activity, path string, sc scope) result {
	rec, seen := r.steps[path]
	if seen && rec.State != model.StepRunning {
		if isLeaf(a) {
			r.done++
		}
		switch rec.State {
		case model.StepSucceeded, model.StepSkipped:
			return okResult
		default:
			msg := rec.Error
			if rec.State == model.StepCanceled && msg == "" {
				msg = "canceled"
			}
			return result{st: failed, err: &template.ErrorView{Step: a.ID, Message: msg}}
		}
	}
	switch a.Kind {
	case template.KindJob:
		return r.job(a, path, sc, rec, seen)
	case template.KindWorkflow:
		return r.child(a, path, sc, rec, seen)
	case template.KindDelay:
		return r.delay(a, path, sc, rec, seen)
	case template.KindSet:
		return r.set(a, path, sc)
	case template.KindLog:
		msg, err := a.Message.EvalString(r.env(path, sc))
		if err != nil {
			return r.end(r.startRecord(a, path), failure(a.ID, "log: %v", err), nil)
		}
		r.done++
		return r.end(r.startRecord(a, path), okResult, map[string]any{"message": msg})
	case template.KindFail:
		msg, err := a.Message.EvalString(r.env(path, sc))
		if err != nil {
			msg = fmt.Sprintf("fail: %v", err)
		}
		r.done++
		return r.end(r.startRecord(a, path), failure(a.ID, "%s", msg), nil)
	case template.KindSequence:
		return r.composite(a, path, rec, seen, func() result { return r.list(a.Children, path, sc) })
	case template.KindParallel:
		return r.composite(a, path, rec, seen, func() result { return r.parallel(a, path, sc) })
	case template.KindIf:
		return r.ifElse(a, path, sc, rec, seen)
	case template.KindForeach:
		return r.foreach(a, path, sc, rec, seen)
	case template.KindTry:
		return r.composite(a, path, rec, seen, func() result { return r.try(a, path, sc) })
	}
	return r.end(r.startRecord(a, path), failure(a.ID, "unknown activity kind %q", a.Kind), nil)
}

// composite records a block's start and end around its body.
func (r *run) composite(a *template.Activity, path string, rec model.Step, seen bool, body func() result) result {
	if !seen {
		rec = r.startRecord(a, path)
		r.record(rec)
	}
	res := body()
	if res.st == pending {
		return res
	}
	return r.end(rec, res, nil)
}

func (r *run) parallel(a *template.Activity, path string, sc scope) result {
	var firstErr *template.ErrorView
	anyPending := false
	for _, c := range a.Children {
		res := r.one(c, path, sc)
		switch res.st {
		case pending:
			anyPending = true
		case failed:
			if firstErr == nil {
				firstErr = res.err
			}
		}
	}
	if firstErr != nil && a.FailFast {
		r.cancelUnder(path, false)
		return result{st: failed, err: firstErr}
	}
	if anyPending {
		return result{st: pending}
	}
	if firstErr != nil {
		return result{st: failed, err: firstErr}
	}
	return okResult
}

func (r *run) ifElse(a *template.Activity, path string, sc scope, rec model.Step, seen bool) result {
	var branch string
	if seen {
		var b struct{ Branch string }
		_ = jsonUnmarshalNumber(rec.Result, &b)
		branch = b.Branch
	} else {
		cond, err := a.Cond.EvalBool(r.env(path, sc))
		if err != nil {
			return r.end(r.startRecord(a, path), failure(a.ID, "if: %v", err), nil)
		}
		branch = "else"
		if cond {
			branch = "then"
		}
		rec = r.startRecord(a, path)
		rec.Result = []byte(`{"branch":"` + branch + `"}`)
		r.record(rec)
	}
	acts := a.Else
	if branch == "then" {
		acts = a.Then
	}
	res := r.list(acts, path, sc)
	if res.st == pending {
		return res
	}
	return r.end(rec, res, map[string]any{"branch": branch})
}

func (r *run) foreach(a *template.Activity, path string, sc scope, rec model.Step, seen bool) result {
	var items []any
	if seen {
		var st any
		if err := jsonUnmarshalNumber(rec.Result, &st); err != nil {
			return r.end(rec, failure(a.ID, "foreach: stored items: %v", err), nil)
		}
		m, _ := st.(map[string]any)
		items, _ = m["items"].([]any)
	} else {
		list, err := a.Items.EvalList(r.env(path, sc))
		if err != nil {
			return r.end(r.startRecord(a, path), failure(a.ID, "foreach: %v", err), nil)
		}
		items = list
		rec = r.startRecord(a, path)
		b, err := jsonMarshal(map[string]any{"items": items})
		if err != nil {
			return r.end(rec, failure(a.ID, "foreach: items: %v", err), nil)
		}
		rec.Result = b
		r.record(rec)
	}
	limit := a.Concurrency
	if limit <= 0 {
		limit = len(items)
	}
	as := a.As
	if as == "" {
		as = "item"
	}
	active := 0
	var firstErr *template.ErrorView
	for i, item := range items {
		iter := path + "[" + strconv.Itoa(i) + "]"
		if !r.started[iter] && (active >= limit || firstErr != nil) {
			// Not started: no free slot, or an iteration failed and no new
			// one should begin.
			if firstErr == nil {
				active++ // counts as waiting, keeps the loop pending
			}
			continue
		}
		res := r.list(a.Do, iter, sc.with(as, item))
		switch res.st {
		case pending:
			active++
		case failed:
			if firstErr == nil {
				firstErr = res.err
			}
		}
		if res.st != pending && !r.started[iter] {
			// An iteration of only instant steps records nothing of its
			// own; remember that it ran.
			r.started[iter] = true
		}
	}
	if active > 0 {
		return result{st: pending}
	}
	if firstErr != nil {
		return r.end(rec, result{st: failed, err: firstErr}, map[string]any{"items": items})
	}
	return r.end(rec, okResult, map[string]any{"items": items, "count": len(items)})
}

func (r *run) try(a *template.Activity, path string, sc scope) result {
	res := r.list(a.Children, path, sc)
	if res.st == pending {
		return res
	}
	if res.st == failed && len(a.Catch) > 0 {
		res = r.list(a.Catch, path, sc.withErr(res.err))
		if res.st == pending {
			return res
		}
	}
	if len(a.Finally) > 0 {
		fin := r.list(a.Finally, path, sc.withErr(res.err))
		if fin.st == pending {
			return fin
		}
		if fin.st == failed {
			return fin
		}
	}
	return res
}
