package template

import (
	"errors"
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/dpe-engine/dpe/internal/model"
)

// kindFields lists the fields each kind takes besides id and on_error.
var kindFields = map[Kind][]string{
	KindJob:      {"job", "params", "priority", "retry", "timeout", "selector"},
	KindSequence: {"sequence"},
	KindParallel: {"parallel", "fail_fast"},
	KindIf:       {"if", "then", "else"},
	KindForeach:  {"foreach", "as", "concurrency", "do"},
	KindSet:      {"set"},
	KindLog:      {"log"},
	KindDelay:    {"delay"},
	KindWorkflow: {"workflow", "args", "timeout"},
	KindFail:     {"fail"},
	KindTry:      {"try", "catch", "finally"},
}

// needsID lists the kinds that must have an explicit id: their outcome is
// stored under it (jobs and sub-workflows are found again by it after a
// crash), and operators look for them by it.
func needsID(k Kind) bool {
	switch k {
	case KindJob, KindWorkflow, KindForeach, KindParallel, KindTry:
		return true
	}
	return false
}

// isKind reports whether key is a kind key.
func isKind(key string) bool {
	_, ok := kindFields[Kind(key)]
	return ok
}

// ownersOf returns the kinds a non-kind field belongs to, in kinds order.
func ownersOf(field string) []Kind {
	var owners []Kind
	for _, k := range kinds {
		for _, f := range kindFields[k] {
			if f == field && Kind(f) != k {
				owners = append(owners, k)
			}
		}
	}
	return owners
}

// steps reads a list of activities. owner and field name the list for
// messages; path is its place in the tree.
func (p *parser) steps(n *yaml.Node, sc scope, owner, field, path string, depth int) []*Activity {
	n = p.deref(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.probs.add(n.Line, owner, field, "want a list of steps, got %s", kindName(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.probs.add(n.Line, owner, field, "must not be empty")
		return nil
	}
	list := make([]*Activity, 0, len(n.Content))
	for i, c := range n.Content {
		if a := p.activity(c, sc, index(path, i), depth+1); a != nil {
			list = append(list, a)
		}
	}
	return list
}

// activity reads one step.
func (p *parser) activity(n *yaml.Node, sc scope, path string, depth int) *Activity {
	n = p.deref(n)
	if n == nil {
		return nil
	}
	p.count++
	a := &Activity{ID: "s" + strconv.Itoa(p.count), AutoID: true, Line: n.Line, Path: path}
	if depth > maxDepth {
		p.probs.add(n.Line, a.ID, "", "steps nested deeper than %d", maxDepth)
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.probs.add(n.Line, a.ID, "", "a step is a mapping with one kind key (%s), got %s", quoteList(kinds), kindName(n))
		return nil
	}
	es := p.entries(n, peekID(n, a.ID), "")
	fields := make(map[string]entry, len(es))
	for _, e := range es {
		fields[e.key] = e
	}
	idOK := p.stepID(a, fields)

	var found []entry
	for _, e := range es {
		if isKind(e.key) {
			found = append(found, e)
		}
	}
	switch len(found) {
	case 0:
		for _, e := range es {
			if ks := ownersOf(e.key); len(ks) > 0 {
				p.probs.add(e.line, a.ID, e.key, "%s without %s", e.key, quoteList(ks))
				return a
			}
		}
		p.probs.add(n.Line, a.ID, "", "no kind: want one of %s", quoteList(kinds))
		return a
	case 1:
		a.Kind = Kind(found[0].key)
	default:
		p.probs.add(found[1].line, a.ID, found[1].key, "a step has exactly one kind, this one has %s and %s", found[0].key, found[1].key)
		return a
	}
	allowed := map[string]bool{"id": true, "on_error": true}
	for _, f := range kindFields[a.Kind] {
		allowed[f] = true
	}
	for _, e := range es {
		if allowed[e.key] {
			continue
		}
		if ks := ownersOf(e.key); len(ks) > 0 {
			p.probs.add(e.line, a.ID, e.key, "not a field of a %s step (it belongs to %s)", a.Kind, quoteList(ks))
		} else {
			p.probs.add(e.line, a.ID, e.key, "unknown field")
		}
	}
	if idOK && a.AutoID && needsID(a.Kind) {
		p.probs.add(n.Line, a.ID, "id", "required on a %s step", a.Kind)
	}
	switch a.Kind {
	case KindJob:
		p.job(a, fields, sc)
	case KindSequence, KindParallel:
		a.FailFast = a.Kind == KindParallel
		a.Children = p.steps(fields[string(a.Kind)].val, sc, a.ID, string(a.Kind), join(path, string(a.Kind)), depth)
		if e, ok := fields["fail_fast"]; ok {
			a.FailFast, _ = p.boolean(e.val, a.ID, "fail_fast")
		}
	case KindIf:
		a.Cond = p.bareExpr(fields["if"].val, sc, a.ID, "if", wantBool)
		if e, ok := fields["then"]; ok {
			a.Then = p.steps(e.val, sc, a.ID, "then", join(path, "then"), depth)
		} else {
			p.probs.add(n.Line, a.ID, "then", "required with if")
		}
		if e, ok := fields["else"]; ok {
			a.Else = p.steps(e.val, sc, a.ID, "else", join(path, "else"), depth)
		}
	case KindForeach:
		p.foreach(a, fields, sc, depth)
	case KindSet:
		p.set(a, fields["set"], sc)
	case KindLog, KindFail:
		e := fields[string(a.Kind)]
		if _, ok := p.str(e.val, a.ID, e.key); ok {
			a.Message, _ = p.value(e.val, sc, a.ID, e.key, true, 0)
			if s, lit := a.Message.Source().(string); lit && s == "" {
				p.probs.add(e.line, a.ID, e.key, "want a message")
			}
		}
	case KindDelay:
		p.delay(a, fields["delay"], sc)
	case KindWorkflow:
		p.workflow(a, fields, sc)
	case KindTry:
		a.Children = p.steps(fields["try"].val, sc, a.ID, "try", join(path, "try"), depth)
		if e, ok := fields["catch"]; ok {
			a.Catch = p.steps(e.val, sc.withError(), a.ID, "catch", join(path, "catch"), depth)
		}
		if e, ok := fields["finally"]; ok {
			a.Finally = p.steps(e.val, sc.withError(), a.ID, "finally", join(path, "finally"), depth)
		}
		if !hasKey(es, "catch") && !hasKey(es, "finally") {
			p.probs.add(n.Line, a.ID, "try", "want catch or finally (or both)")
		}
	}
	a.OnError.Action = OnErrorFail
	if e, ok := fields["on_error"]; ok {
		p.onError(a, e, sc, depth)
	}
	return a
}

// peekID returns the id a step mapping declares, or def when it has no
// usable one: problems found before the id is read still name the step.
func peekID(n *yaml.Node, def string) string {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Value == "id" && v.Kind == yaml.ScalarNode &&
			identRe.MatchString(v.Value) && !autoIDRe.MatchString(v.Value) {
			return v.Value
		}
	}
	return def
}

// stepID reads and registers the step's id; false when it is refused.
func (p *parser) stepID(a *Activity, fields map[string]entry) bool {
	e, ok := fields["id"]
	if !ok {
		p.stepIDs[a.ID] = a
		return true
	}
	id, ok := p.str(e.val, a.ID, "id")
	if !ok {
		return false
	}
	switch {
	case !identRe.MatchString(id):
		p.probs.add(e.val.Line, a.ID, "id", "%q is not a step id: want a letter or _ then up to 63 letters, digits or _", id)
		return false
	case autoIDRe.MatchString(id):
		p.probs.add(e.val.Line, a.ID, "id", "%q has the form of a generated id (s<number>), which is reserved", id)
		return false
	}
	a.ID, a.AutoID = id, false
	if prev, dup := p.stepIDs[id]; dup {
		p.probs.add(e.val.Line, id, "id", "duplicate id (also on line %d)", prev.Line)
		return false
	}
	p.stepIDs[id] = a
	return true
}

// job reads the fields of a job step.
func (p *parser) job(a *Activity, fields map[string]entry, sc scope) {
	if typ, ok := p.str(fields["job"].val, a.ID, "job"); ok {
		switch {
		case typ == "":
			p.probs.add(fields["job"].line, a.ID, "job", "want a job type")
		case p.opts.KnownJobType != nil && !p.opts.KnownJobType(typ):
			p.probs.add(fields["job"].val.Line, a.ID, "job", "unknown job type %q", typ)
		default:
			a.JobType = typ
		}
	}
	a.Params = Value{kind: valueMap, dict: map[string]Value{}, line: a.Line}
	paramsOK := true
	if e, ok := fields["params"]; ok {
		if m, isMap := p.mapping(e.val, a.ID, "params"); isMap {
			a.Params, paramsOK = p.value(m, sc, a.ID, "params", true, 0)
		} else {
			paramsOK = false
		}
	}
	if e, ok := fields["priority"]; ok {
		a.Priority, _ = p.integer(e.val, a.ID, "priority", -model.MaxPriority, model.MaxPriority)
	}
	if e, ok := fields["retry"]; ok {
		p.retry(a, e)
	}
	if e, ok := fields["timeout"]; ok {
		a.Timeout, _ = p.duration(e.val, a.ID, "timeout")
	}
	if e, ok := fields["selector"]; ok {
		p.selector(a, e)
	}
	if paramsOK && a.JobType != "" && p.opts.JobParams != nil {
		p.jobParams(a)
	}
}

// jobParams hands the literal params to ParseOptions.JobParams.
func (p *parser) jobParams(a *Activity) {
	lit := map[string]any{}
	for _, k := range a.Params.Keys() {
		if v := a.Params.dict[k]; v.IsLiteral() {
			lit[k], _ = v.Eval(Env{}) // a literal: no environment needed
		}
	}
	err := p.opts.JobParams(a.JobType, lit)
	if err == nil {
		return
	}
	var fe *model.FieldError
	if errors.As(err, &fe) {
		line := a.Params.line
		if v, ok := a.Params.dict[fe.Field]; ok {
			line = v.line
		}
		p.probs.add(line, a.ID, join("params", fe.Field), "%s", fe.Reason)
		return
	}
	p.probs.add(a.Params.line, a.ID, "params", "%v", err)
}

// retry reads a job's retry policy.
func (p *parser) retry(a *Activity, e entry) {
	m, ok := p.mapping(e.val, a.ID, "retry")
	if !ok {
		return
	}
	for _, f := range p.entries(m, a.ID, "retry") {
		field := join("retry", f.key)
		switch f.key {
		case "max_attempts":
			a.Retry.MaxAttempts, _ = p.integer(f.val, a.ID, field, 1, 1000)
		case "backoff":
			a.Retry.Backoff, _ = p.duration(f.val, a.ID, field)
		case "backoff_max":
			a.Retry.BackoffMax, _ = p.duration(f.val, a.ID, field)
		default:
			p.probs.add(f.line, a.ID, field, "unknown field (retry has max_attempts, backoff, backoff_max)")
		}
	}
	r := a.Retry
	if r.Backoff > 0 && r.BackoffMax > 0 && r.BackoffMax < r.Backoff {
		p.probs.add(m.Line, a.ID, "retry.backoff_max", "%s is less than backoff %s", r.BackoffMax, r.Backoff)
	}
}

// selector reads a job's label selector: scalar values, kept as text.
func (p *parser) selector(a *Activity, e entry) {
	m, ok := p.mapping(e.val, a.ID, "selector")
	if !ok {
		return
	}
	a.Selector = map[string]string{}
	for _, f := range p.entries(m, a.ID, "selector") {
		v := p.deref(f.val)
		if v == nil {
			continue
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" || !isPlainScalar(v) {
			p.probs.add(v.Line, a.ID, join("selector", f.key), "want a label value, got %s", kindName(v))
			continue
		}
		if hasInterp(v.Value) {
			p.probs.add(v.Line, a.ID, join("selector", f.key), "expressions are not allowed here")
			continue
		}
		a.Selector[f.key] = v.Value
	}
}

// isPlainScalar reports whether a scalar is a string, number or bool.
func isPlainScalar(n *yaml.Node) bool {
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool":
		return true
	}
	return false
}

// foreach reads the fields of a foreach step.
func (p *parser) foreach(a *Activity, fields map[string]entry, sc scope, depth int) {
	a.Items = p.bareExpr(fields["foreach"].val, sc, a.ID, "foreach", wantList)
	a.As, a.Concurrency = "item", 1
	if e, ok := fields["as"]; ok {
		if s, ok := p.str(e.val, a.ID, "as"); ok {
			_, outer := sc.loops[s]
			switch {
			case !identRe.MatchString(s):
				p.probs.add(e.val.Line, a.ID, "as", "%q is not a variable name: want a letter or _ then letters, digits or _", s)
			case reservedName(s):
				p.probs.add(e.val.Line, a.ID, "as", "%q is a reserved name", s)
			case outer:
				p.probs.add(e.val.Line, a.ID, "as", "%q is already the variable of foreach %q around this one", s, sc.loops[s])
			default:
				a.As = s
			}
		}
	} else if _, outer := sc.loops["item"]; outer {
		p.probs.add(fields["foreach"].line, a.ID, "as", "required: the enclosing foreach %q already uses item", sc.loops["item"])
	}
	if _, seen := p.loopVars[a.As]; !seen {
		p.loopVars[a.As] = a.ID
	}
	if e, ok := fields["concurrency"]; ok {
		a.Concurrency, _ = p.integer(e.val, a.ID, "concurrency", 0, 1_000_000)
	}
	if e, ok := fields["do"]; ok {
		a.Do = p.steps(e.val, sc.withLoop(a.As, a.ID), a.ID, "do", join(a.Path, "do"), depth)
	} else {
		p.probs.add(a.Line, a.ID, "do", "required with foreach")
	}
}

// set reads the assignments of a set step.
func (p *parser) set(a *Activity, e entry, sc scope) {
	m, ok := p.mapping(e.val, a.ID, "set")
	if !ok {
		return
	}
	a.Set = map[string]Value{}
	for _, f := range p.entries(m, a.ID, "set") {
		field := join("set", f.key)
		if !identRe.MatchString(f.key) {
			p.probs.add(f.line, a.ID, field, "%q is not a variable name: want a letter or _ then letters, digits or _", f.key)
			continue
		}
		p.setVars[f.key] = true
		if v, ok := p.value(f.val, sc, a.ID, field, true, 0); ok {
			a.Set[f.key] = v
		}
	}
	if len(m.Content) == 0 {
		p.probs.add(m.Line, a.ID, "set", "want at least one variable")
	}
}

// delay reads a delay: a duration, or an interpolated string yielding one.
func (p *parser) delay(a *Activity, e entry, sc scope) {
	s, ok := p.str(e.val, a.ID, "delay")
	if !ok {
		return
	}
	if hasInterp(s) {
		a.Delay, _ = p.value(e.val, sc, a.ID, "delay", true, 0)
		if !a.Delay.IsLiteral() {
			return
		}
		s, _ = a.Delay.EvalString(Env{})
	}
	d, err := parseDuration(s, false)
	if err != nil {
		p.probs.add(e.val.Line, a.ID, "delay", "%v", err)
		return
	}
	a.Delay = literalValue(d.String(), e.val.Line)
}

// workflow reads the fields of a sub-workflow step.
func (p *parser) workflow(a *Activity, fields map[string]entry, sc scope) {
	e := fields["workflow"]
	if name, ok := p.str(e.val, a.ID, "workflow"); ok {
		switch {
		case !nameRe.MatchString(name):
			p.probs.add(e.val.Line, a.ID, "workflow", "%q is not a template name: want 1 to 128 of [a-z0-9._-]", name)
		case name != p.t.Name && p.opts.KnownTemplate != nil && !p.opts.KnownTemplate(name):
			p.probs.add(e.val.Line, a.ID, "workflow", "unknown template %q", name)
		default:
			a.Template = name
		}
	}
	a.Args = Value{kind: valueMap, dict: map[string]Value{}, line: a.Line}
	if f, ok := fields["args"]; ok {
		if m, isMap := p.mapping(f.val, a.ID, "args"); isMap {
			a.Args, _ = p.value(m, sc, a.ID, "args", true, 0)
		}
	}
	if f, ok := fields["timeout"]; ok {
		a.Timeout, _ = p.duration(f.val, a.ID, "timeout")
	}
}

// onError reads an activity's error policy.
func (p *parser) onError(a *Activity, e entry, sc scope, depth int) {
	n := p.deref(e.val)
	if n == nil {
		return
	}
	if n.Kind == yaml.SequenceNode {
		a.OnError = OnError{Action: OnErrorSteps, Steps: p.steps(n, sc.withError(), a.ID, "on_error", join(a.Path, "on_error"), depth)}
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
		switch OnErrorAction(n.Value) {
		case OnErrorFail, OnErrorContinue:
			a.OnError.Action = OnErrorAction(n.Value)
			return
		}
	}
	p.probs.add(n.Line, a.ID, "on_error", "want continue, fail or a list of steps, got %s", describeNode(n))
}

// describeNode names a node for messages, with its text when a scalar.
func describeNode(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode {
		return fmt.Sprintf("%q", n.Value)
	}
	return kindName(n)
}
