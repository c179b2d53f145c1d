package template

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/file"
	exprparser "github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
	"gopkg.in/yaml.v3"
)

// scope is what an expression may see at its place in the tree.
type scope struct {
	loops   map[string]string // loop variables in scope → their foreach id
	errorOK bool              // inside catch, finally or on_error steps
	keyOnly bool              // concurrency_key: args, instance, event, row, fire_time
	trigger bool              // trigger args (CompileData): event, row, fire_time only
}

// withLoop returns sc with loop variable name (of foreach id) in scope.
func (sc scope) withLoop(name, id string) scope {
	loops := make(map[string]string, len(sc.loops)+1)
	for k, v := range sc.loops {
		loops[k] = v
	}
	loops[name] = id
	sc.loops = loops
	return sc
}

// withError returns sc with error in scope.
func (sc scope) withError() scope {
	sc.errorOK = true
	return sc
}

// want is what an expression's result must be.
type want uint8

const (
	wantAny    want = iota
	wantBool        // if
	wantList        // foreach
	wantScalar      // concurrency_key: no list or map
)

// reservedName reports whether name cannot be a loop variable: the
// environment's names, expr's keywords, builtins and helper functions.
func reservedName(name string) bool {
	switch name {
	case "args", "vars", "steps", "error", "instance", "event", "row", "fire_time",
		"true", "false", "nil", "not", "and", "or", "in", "matches", "contains",
		"startsWith", "endsWith", "let", "if", "else":
		return true
	}
	for _, f := range funcNames {
		if f == name {
			return true
		}
	}
	for _, b := range builtin.Builtins {
		if b.Name == name {
			return true
		}
	}
	return false
}

// value reads a template value. Strings holding ${{ }} become
// interpolations whose expressions are checked once the whole template is
// read; with exprs false they are refused.
func (p *parser) value(n *yaml.Node, sc scope, step, field string, exprs bool, depth int) (Value, bool) {
	n = p.deref(n)
	if n == nil {
		return Value{}, false
	}
	if depth > maxDepth {
		p.probs.add(n.Line, step, field, "nested deeper than %d", maxDepth)
		return Value{}, false
	}
	switch n.Kind {
	case yaml.MappingNode:
		v := Value{kind: valueMap, dict: map[string]Value{}, line: n.Line}
		ok := true
		for _, e := range p.entries(n, step, field) {
			ev, good := p.value(e.val, sc, step, join(field, e.key), exprs, depth+1)
			ok = ok && good
			v.dict[e.key] = ev
			v.dyn = v.dyn || ev.dyn
		}
		return v, ok
	case yaml.SequenceNode:
		v := Value{kind: valueList, list: make([]Value, 0, len(n.Content)), line: n.Line}
		ok := true
		for i, c := range n.Content {
			ev, good := p.value(c, sc, step, index(field, i), exprs, depth+1)
			ok = ok && good
			v.list = append(v.list, ev)
			v.dyn = v.dyn || ev.dyn
		}
		return v, ok
	case yaml.ScalarNode:
		lit, ok := p.scalar(n, step, field)
		if !ok {
			return Value{}, false
		}
		s, isString := lit.(string)
		if !isString || n.ShortTag() != "!!str" || !hasInterp(s) {
			return literalValue(lit, n.Line), true
		}
		return p.interpolation(s, n.Line, sc, step, field, exprs)
	}
	p.probs.add(n.Line, step, field, "unsupported YAML node")
	return Value{}, false
}

// interpolation splits s into text and expressions and queues their
// checks.
func (p *parser) interpolation(s string, line int, sc scope, step, field string, allowed bool) (Value, bool) {
	parts, whole, err := splitInterp(s)
	if err != nil {
		p.probs.add(line, step, field, "%v", err)
		return Value{}, false
	}
	in := &interp{src: s, parts: parts, whole: whole}
	exprs := 0
	for _, part := range parts {
		if part.expr != nil {
			exprs++
		}
	}
	if exprs == 0 {
		// Only escaped marks: a literal, kept as written so that export
		// writes the escapes back.
		return Value{kind: valueInterp, str: in, line: line}, true
	}
	if !allowed {
		p.probs.add(line, step, field, "expressions are not allowed here")
		return Value{}, false
	}
	for _, part := range parts {
		if part.expr != nil {
			part.expr.line = line
			p.later(part.expr, sc, step, field, wantAny)
		}
	}
	return Value{kind: valueInterp, str: in, dyn: true, line: line}, true
}

// bareExpr reads an expression written without ${{ }} (if, foreach,
// concurrency_key) and queues its check.
func (p *parser) bareExpr(n *yaml.Node, sc scope, step, field string, w want) *Expr {
	n = p.deref(n)
	if n == nil {
		return nil
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" || n.Value == "" {
		p.probs.add(n.Line, step, field, "want an expression (a string such as \"args.count > 1\"), got %s", kindName(n))
		return nil
	}
	if hasInterp(n.Value) {
		p.probs.add(n.Line, step, field, "write the expression bare, without ${{ }}")
		return nil
	}
	e := &Expr{src: n.Value, line: n.Line}
	p.later(e, sc, step, field, w)
	return e
}

// later queues the check of e for when every id, arg and variable of the
// template is known.
func (p *parser) later(e *Expr, sc scope, step, field string, w want) {
	p.tasks = append(p.tasks, func() { p.compile(e, sc, step, field, w) })
}

// compileKey is what the outcome of compiling an expression depends on
// once the whole template is read: its text, what it must yield and the
// names in scope at its place.
type compileKey struct {
	src                     string
	want                    want
	loops                   string // loop variable names in scope, sorted, comma-separated
	errorOK, keyOnly, trigg bool
}

// compiled is the outcome of compiling one expression: a program, or the
// reasons it was refused.
type compiled struct {
	prog    *vm.Program // immutable: shared by every Expr with the same key
	steps   []string    // sorted; shared read-only
	reasons []string
}

// keyOf returns the compile key of src at scope sc.
func keyOf(src string, sc scope, w want) compileKey {
	names := make([]string, 0, len(sc.loops))
	for name := range sc.loops {
		names = append(names, name)
	}
	sort.Strings(names)
	return compileKey{src: src, want: w, loops: strings.Join(names, ","), errorOK: sc.errorOK, keyOnly: sc.keyOnly, trigg: sc.trigger}
}

// compile checks e's references against the template, then compiles it
// with expr against a typed environment. An expression written (or
// aliased) many times in one scope is compiled once: the outcome is the
// same for every copy, and each copy that is refused is still reported
// with its own line, step and field.
func (p *parser) compile(e *Expr, sc scope, step, field string, w want) {
	key := keyOf(e.src, sc, w)
	c, ok := p.compiled[key]
	if !ok {
		c = p.compileNew(e.src, sc, w)
		p.compiled[key] = c
	}
	for _, r := range c.reasons {
		p.probs.add(e.line, step, field, "%s", r)
	}
	e.prog, e.steps = c.prog, c.steps
}

// compileNew compiles src at scope sc.
func (p *parser) compileNew(src string, sc scope, w want) *compiled {
	c := &compiled{}
	bad := func(format string, args ...any) {
		c.reasons = append(c.reasons, fmt.Sprintf(format, args...))
	}
	tree, err := exprparser.Parse(src)
	if err != nil {
		bad("bad expression: %s", exprMessage(err, src))
		return c
	}
	refs := &refChecker{p: p, sc: sc, bad: bad, lets: map[string]bool{}, callees: map[ast.Node]bool{}}
	ast.Walk(&tree.Node, refs.collector())
	ast.Walk(&tree.Node, refs)
	if refs.failed {
		return c
	}
	env := p.envType(sc, refs)
	env[budgetVar] = budgetType
	opts := append(append([]expr.Option(nil), p.exprOpts...), expr.Env(env))
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		bad("bad expression: %s", exprMessage(err, src))
		return c
	}
	if msg := checkResult(prog.Node().Type(), w); msg != "" {
		bad("%s", msg)
		return c
	}
	c.prog = prog
	c.steps = refs.steps
	sort.Strings(c.steps)
	return c
}

// checkResult says what is wrong with a result of static type t, or "".
func checkResult(t reflect.Type, w want) string {
	if t == nil || t.Kind() == reflect.Interface {
		return "" // known at run time only
	}
	switch w {
	case wantBool:
		if t.Kind() != reflect.Bool {
			return fmt.Sprintf("the condition yields %s, want a bool", t)
		}
	case wantList:
		if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
			return fmt.Sprintf("the expression yields %s, want a list", t)
		}
	case wantScalar:
		switch t.Kind() {
		case reflect.Slice, reflect.Array, reflect.Map, reflect.Func:
			return fmt.Sprintf("the key yields %s, want a string or number", t)
		}
	}
	return ""
}

// exprMessage renders an expr error on one line.
func exprMessage(err error, src string) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		if fe.Line > 1 {
			return fmt.Sprintf("%s at line %d column %d of %q", fe.Message, fe.Line, fe.Column+1, src)
		}
		return fmt.Sprintf("%s at column %d of %q", fe.Message, fe.Column+1, src)
	}
	return err.Error()
}

// envType is the typed environment for an expression in scope sc. It
// holds only the steps and variables the expression names (refs checked
// they exist), which keeps compiling linear in the template's size; a
// dynamic steps[x] or vars[x] reads as any.
func (p *parser) envType(sc scope, refs *refChecker) types.Map {
	args := types.Map{}
	for name := range p.argNames {
		args[name] = types.Any
	}
	for name, spec := range p.t.Args {
		args[name] = spec.nature()
	}
	open := types.Map{types.Extra: types.Any}
	if sc.trigger {
		return types.Map{"event": open, "row": open, "fire_time": types.TypeOf(time.Time{})}
	}
	env := types.Map{
		"args":      args,
		"instance":  types.Map{"id": types.Int64, "name": types.String, "priority": types.Int},
		"event":     open,
		"row":       open,
		"fire_time": types.TypeOf(time.Time{}),
	}
	if sc.keyOnly {
		return env
	}
	vars := types.Map{types.Extra: types.Any}
	for _, name := range refs.vars {
		vars[name] = types.Any
	}
	steps := types.Map{types.Extra: types.Map{"result": types.Any, "state": types.String}}
	for _, id := range refs.steps {
		steps[id] = types.Map{"result": types.Any, "state": types.String}
	}
	env["vars"] = vars
	env["steps"] = steps
	if sc.errorOK {
		env["error"] = types.Map{"message": types.String, "step": types.String}
	}
	for name := range sc.loops {
		env[name] = types.Any
	}
	return env
}

// refChecker walks an expression's syntax tree and refuses, with a message
// that says why, names that do not exist at that place in the template.
type refChecker struct {
	p       *parser
	sc      scope
	bad     func(format string, args ...any)
	failed  bool
	lets    map[string]bool   // names bound by let
	callees map[ast.Node]bool // identifiers that are called, not read
	steps   []string          // step ids read
	vars    []string          // variables read
}

// collector returns a visitor that records let names and callees.
func (r *refChecker) collector() ast.Visitor {
	return visitFunc(func(n *ast.Node) {
		switch x := (*n).(type) {
		case *ast.VariableDeclaratorNode:
			r.lets[x.Name] = true
		case *ast.CallNode:
			r.callees[x.Callee] = true
		}
	})
}

// visitFunc adapts a function to ast.Visitor.
type visitFunc func(n *ast.Node)

// Visit implements ast.Visitor.
func (f visitFunc) Visit(n *ast.Node) { f(n) }

// Visit implements ast.Visitor.
func (r *refChecker) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.MemberNode:
		root, ok := x.Node.(*ast.IdentifierNode)
		prop, isString := x.Property.(*ast.StringNode)
		if !ok || !isString || r.lets[root.Value] {
			return
		}
		r.member(root.Value, prop.Value)
	case *ast.IdentifierNode:
		if x.Value == tickFunc || x.Value == budgetVar {
			r.fail("%s is reserved for the evaluation budget", x.Value)
			return
		}
		if r.callees[x] || r.lets[x.Value] {
			return
		}
		r.ident(x.Value)
	}
}

// fail reports one problem.
func (r *refChecker) fail(format string, args ...any) {
	r.failed = true
	r.bad(format, args...)
}

// member checks root.name for the template's own namespaces.
func (r *refChecker) member(root, name string) {
	p := r.p
	if r.sc.trigger {
		return // args, steps and vars are refused as identifiers
	}
	switch root {
	case "args":
		if !p.argNames[name] {
			r.fail("args.%s: no such arg (declared: %s)", name, declared(p.argNames))
		}
	case "steps":
		if r.sc.keyOnly {
			return // refused as an identifier
		}
		a, ok := p.stepIDs[name]
		switch {
		case !ok:
			r.fail("steps.%s: no step has id %q", name, name)
		case a.AutoID:
			r.fail("steps.%s: that step has a generated id; give it an id to read its result", name)
		default:
			for _, s := range r.steps {
				if s == name {
					return
				}
			}
			r.steps = append(r.steps, name)
		}
	case "vars":
		if r.sc.keyOnly {
			return // refused as an identifier
		}
		if !p.setVars[name] {
			r.fail("vars.%s: no set step assigns %q", name, name)
		}
		r.vars = append(r.vars, name)
	}
}

// ident checks a bare name against the scope.
func (r *refChecker) ident(name string) {
	sc := r.sc
	switch {
	case sc.trigger && triggerRefused(name):
		r.fail("%s: a trigger's args may read only event, row and fire_time", name)
	case sc.keyOnly && (name == "vars" || name == "steps" || name == "error"):
		r.fail("%s: a concurrency key may read only args, instance, event, row and fire_time", name)
	case name == "error" && !sc.errorOK:
		r.fail("error: only in scope inside catch, finally and on_error steps")
	default:
		if id, isLoop := r.p.loopVars[name]; isLoop {
			if _, in := sc.loops[name]; !in {
				r.fail("%s: loop variable of foreach %q, only in scope inside its do steps", name, id)
			}
		}
	}
}

// triggerRefused reports whether name is a template name that trigger args
// cannot read: they are evaluated before any instance exists.
func triggerRefused(name string) bool {
	switch name {
	case "args", "vars", "steps", "error", "instance":
		return true
	}
	return false
}

// declared lists names for messages.
func declared(names map[string]bool) string {
	if len(names) == 0 {
		return "none"
	}
	list := make([]string, 0, len(names))
	for n := range names {
		list = append(list, n)
	}
	sort.Strings(list)
	s := ""
	for i, n := range list {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}
