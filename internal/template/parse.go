package template

import (
	"bytes"
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"gopkg.in/yaml.v3"

	"github.com/dpe-engine/dpe/internal/wire"
)

// MaxSize is the largest template source Parse accepts.
const MaxSize = 1 << 20

// ParseOptions lets the caller check what the template refers to. Nil
// functions accept everything.
type ParseOptions struct {
	// KnownJobType reports whether a job type exists (is served or
	// registered); an unknown one is refused on the step's "job" field.
	KnownJobType func(jobType string) bool
	// KnownTemplate reports whether a template exists; an unknown one is
	// refused on the step's "workflow" field. A template may always call
	// itself.
	KnownTemplate func(name string) bool
	// JobParams validates a job step's params. It gets only the params
	// whose value holds no expression (the others are known at run time
	// only). A *model.FieldError it returns is reported on
	// "params.<its field>", any other error on "params".
	JobParams func(jobType string, params map[string]any) error
}

var (
	// nameRe is the form of template names (DESIGN §9).
	nameRe = regexp.MustCompile(`^[a-z0-9._-]{1,128}$`)
	// identRe is the form of step ids, arg, variable and loop names: usable
	// as steps.<id>, args.<name>, vars.<name> and <as> in expressions.
	identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	// autoIDRe is the form of generated ids, reserved for them.
	autoIDRe = regexp.MustCompile(`^s[0-9]+$`)
	// yamlLineRe finds the line in a yaml.v3 syntax error.
	yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// parser holds the state of one Parse call.
type parser struct {
	opts  ParseOptions
	probs problems
	t     *Template

	count    int                      // activities seen, for generated ids
	setVars  map[string]bool          // names any set step assigns
	loopVars map[string]string        // every loop variable → first foreach declaring it
	tasks    []func()                 // expression checks, run once all ids are known
	exprOpts []expr.Option            // helper functions and disabled builtins
	argNames map[string]bool          // declared args, even ill-declared ones
	stepIDs  map[string]*Activity     // activities by id (first one on duplicates)
	compiled map[compileKey]*compiled // expressions compiled so far
}

// Parse reads a template (YAML, or JSON which is YAML) and validates all
// of it. On failure it returns a *ValidationError listing every problem;
// errors.Is(err, model.ErrInvalid) holds.
func Parse(data []byte, opts ParseOptions) (*Template, error) {
	p := newParser(opts)
	if len(data) > MaxSize {
		p.probs.add(0, "", "", "template is %d bytes, more than the %d allowed", len(data), MaxSize)
		return nil, p.probs.err("")
	}
	root, ok := p.document(data)
	if ok && p.checkSize(root, "") {
		p.template(root)
		for _, task := range p.tasks {
			task()
		}
	}
	if err := p.probs.err(p.t.Name); err != nil {
		return nil, err
	}
	return p.t, nil
}

// newParser returns a parser with an empty template.
func newParser(opts ParseOptions) *parser {
	p := &parser{
		opts:     opts,
		t:        &Template{Concurrency: ConcurrencyAllow, Args: map[string]ArgSpec{}, byID: map[string]*Activity{}},
		setVars:  map[string]bool{},
		loopVars: map[string]string{},
		exprOpts: exprOptions(),
		argNames: map[string]bool{},
		compiled: map[compileKey]*compiled{},
	}
	p.stepIDs = p.t.byID
	return p
}

// document decodes the single YAML document in data.
func (p *parser) document(data []byte) (*yaml.Node, bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.probs.add(0, "", "", "empty template")
		} else {
			p.yamlError(err)
		}
		return nil, false
	}
	var more yaml.Node
	switch err := dec.Decode(&more); {
	case err == nil:
		p.probs.add(more.Line, "", "", "more than one YAML document")
		return nil, false
	case !errors.Is(err, io.EOF):
		p.yamlError(err)
		return nil, false
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		p.probs.add(doc.Line, "", "", "empty template")
		return nil, false
	}
	return doc.Content[0], true
}

// yamlError turns a yaml.v3 syntax error into a Problem.
func (p *parser) yamlError(err error) {
	msg := err.Error()
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.probs.add(line, "", "", "bad YAML: %s", m[2])
		return
	}
	p.probs.add(0, "", "", "bad YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// template reads the top-level mapping.
func (p *parser) template(n *yaml.Node) {
	n = p.deref(n)
	if n == nil {
		return
	}
	if n.Kind != yaml.MappingNode {
		p.probs.add(n.Line, "", "", "a template is a mapping with name and steps, got %s", kindName(n))
		return
	}
	t := p.t
	var steps, key *yaml.Node
	concurrencyLine := 0
	es := p.entries(n, "", "")
	for _, e := range es {
		if e.key == "name" { // first, so that every message carries it
			if s, ok := p.str(e.val, "", "name"); ok {
				if len(s) > wire.MaxNameLen {
					p.probs.add(e.val.Line, "", "name", "at most %d characters, got %d", wire.MaxNameLen, len(s))
				} else if nameRe.MatchString(s) {
					t.Name = s
				} else {
					p.probs.add(e.val.Line, "", "name", "%q is not a template name: want 1 to 128 of [a-z0-9._-]", s)
				}
			}
		}
	}
	for _, e := range es {
		switch e.key {
		case "name":
		case "version":
			t.Version, _ = p.integer(e.val, "", "version", 1, 1<<31-1)
		case "description":
			t.Description, _ = p.str(e.val, "", "description")
		case "args":
			p.args(e.val)
		case "steps":
			steps = e.val
		case "output":
			t.Output = p.output(e.val)
		case "concurrency_key":
			key = e.val
		case "concurrency":
			concurrencyLine = e.line
			if s, ok := p.str(e.val, "", "concurrency"); ok {
				switch s {
				case ConcurrencyAllow, ConcurrencySkip, ConcurrencyQueue:
					t.Concurrency = s
				default:
					p.probs.add(e.val.Line, "", "concurrency", "%q: want allow, skip or queue", s)
				}
			}
		case "timeout":
			t.Timeout, _ = p.duration(e.val, "", "timeout")
		default:
			p.probs.add(e.line, "", e.key, "unknown field (a template has name, version, description, args, steps, output, concurrency, concurrency_key, timeout)")
		}
	}
	if t.Name == "" && !hasKey(es, "name") {
		p.probs.add(n.Line, "", "name", "required")
	}
	if steps == nil {
		p.probs.add(n.Line, "", "steps", "required")
	} else {
		t.Steps = p.steps(steps, scope{}, "", "steps", "steps", 0)
	}
	if key != nil {
		if t.Concurrency == ConcurrencyAllow {
			line := concurrencyLine
			if line == 0 {
				line = key.Line
			}
			p.probs.add(line, "", "concurrency_key", "has no effect unless concurrency is skip or queue")
		}
		t.ConcurrencyKey = p.bareExpr(key, scope{keyOnly: true}, "", "concurrency_key", wantScalar)
	}
}

// hasKey reports whether key is among es.
func hasKey(es []entry, key string) bool {
	for _, e := range es {
		if e.key == key {
			return true
		}
	}
	return false
}

// output reads the output map.
func (p *parser) output(n *yaml.Node) map[string]Value {
	m, ok := p.mapping(n, "", "output")
	if !ok {
		return nil
	}
	out := map[string]Value{}
	for _, e := range p.entries(m, "", "output") {
		if v, ok := p.value(e.val, scope{}, "", join("output", e.key), true, 0); ok {
			out[e.key] = v
		}
	}
	return out
}

// args reads the args declarations.
func (p *parser) args(n *yaml.Node) {
	m, ok := p.mapping(n, "", "args")
	if !ok {
		return
	}
	t := p.t
	for _, e := range p.entries(m, "", "args") {
		field := join("args", e.key)
		if !identRe.MatchString(e.key) {
			p.probs.add(e.line, "", field, "%q is not an arg name: want a letter or _ then letters, digits or _", e.key)
			continue
		}
		p.argNames[e.key] = true // known to expressions even if ill-declared
		spec, ok := p.argSpec(e, field)
		if ok {
			t.Args[e.key] = spec
			t.ArgNames = append(t.ArgNames, e.key)
		}
	}
}

// argSpec reads one arg declaration.
func (p *parser) argSpec(e entry, field string) (ArgSpec, bool) {
	spec := ArgSpec{Name: e.key, Type: ArgAny, Line: e.line}
	m, ok := p.mapping(e.val, "", field)
	if !ok {
		return spec, false
	}
	var def *yaml.Node
	var good bool
	for _, f := range p.entries(m, "", field) {
		ff := join(field, f.key)
		switch f.key {
		case "type":
			s, good := p.str(f.val, "", ff)
			if !good {
				ok = false
				continue
			}
			spec.Type = ArgType(s)
			if !validArgType(spec.Type) {
				p.probs.add(f.val.Line, "", ff, "unknown type %q: want %s", s, quoteList(argTypes))
				ok = false
			}
		case "required":
			spec.Required, good = p.boolean(f.val, "", ff)
			ok = ok && good
		case "default":
			def = f.val
		case "description":
			spec.Description, good = p.str(f.val, "", ff)
			ok = ok && good
		default:
			p.probs.add(f.line, "", ff, "unknown field (an arg has type, required, default, description)")
			ok = false
		}
	}
	if def != nil && ok {
		ff := join(field, "default")
		v, good := p.value(def, scope{}, "", ff, false, 0)
		if !good {
			return spec, false
		}
		lit, err := v.Eval(Env{}) // a literal: no environment needed
		if err != nil {
			p.probs.add(def.Line, "", ff, "%v", err)
			return spec, false
		}
		switch {
		case lit == nil:
			p.probs.add(def.Line, "", ff, "null is not a default: leave default out")
			return spec, false
		case spec.Required:
			p.probs.add(def.Line, "", ff, "a required arg cannot have a default")
			return spec, false
		}
		cv, err := convertDefault(spec.Type, lit)
		if err != nil {
			p.probs.add(def.Line, "", ff, "%v", err)
			return spec, false
		}
		spec.Default, spec.HasDefault = cv, true
	}
	return spec, ok
}
