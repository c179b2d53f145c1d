package template

import (
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

// CompileData compiles a value as written in a trigger's config (a scalar, or
// nested maps/lists as decoded from YAML or JSON) whose strings may hold ${{ }}
// expressions. Expressions may use only event, row and fire_time (plus the
// helper functions); anything else (args, vars, steps, error, instance, loop
// variables) is refused. field names the value in errors (e.g.
// "on.created.args"). Errors are *ValidationError with Problems naming the field
// path (e.g. "on.created.args.path").
//
// The value follows the template rules: a string that is exactly one
// ${{ expr }} keeps the expression's type, any other string with ${{ }}
// interpolates (fire_time as RFC 3339 UTC), "$${{" is a literal "${{", map
// keys must be strings and values must be YAML/JSON scalars, lists or maps.
// Evaluate the result with Value.Eval(Env{Event: ..., Row: ..., FireTime:
// ...}); it is safe for concurrent use.
func CompileData(v any, field string) (Value, error) {
	p := newParser(ParseOptions{})
	n, err := encodeNode(v)
	if err != nil {
		p.probs.add(0, "", field, "cannot read the value: %v", err)
		return Value{}, p.probs.err("")
	}
	if !p.checkSize(n, field) {
		return Value{}, p.probs.err("")
	}
	val, ok := p.value(n, scope{trigger: true}, "", field, true, 0)
	for _, task := range p.tasks {
		task()
	}
	if !ok && len(p.probs.list) == 0 {
		p.probs.add(0, "", field, "cannot read the value")
	}
	if err := p.probs.err(""); err != nil {
		return Value{}, err
	}
	return val, nil
}

// encodeNode turns v into a yaml.v3 node, so that the template's value
// reader checks and compiles it. yaml.v3 panics on types it cannot
// marshal (funcs, channels); that becomes an error.
func encodeNode(v any) (n *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = nil, fmt.Errorf("%v", r)
		}
	}()
	n = new(yaml.Node)
	if err := n.Encode(jsonNumbers(v)); err != nil {
		return nil, err
	}
	plainKeys(n)
	return n, nil
}

// jsonNumbers returns v with every json.Number (from a decoder with
// UseNumber) replaced by the int or float64 it holds; yaml.v3 would write
// it as a string. v itself is not changed.
func jsonNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonNumbers(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonNumbers(e)
		}
		return out
	}
	return v
}

// plainKeys marks "<<" keys as strings: yaml.v3 writes the key "<<" plain,
// which reads back as a merge key, but a Go map has no merge keys.
func plainKeys(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
				k.Tag = "!!str"
			}
		}
	}
	for _, c := range n.Content {
		plainKeys(c)
	}
}
