package jobtype

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// Validate checks params against the spec. Params must be a JSON object;
// empty or null params count as {}. Parameters the spec does not list are
// refused unless the spec is Open, required ones must be present, and each
// value must have its parameter's kind. The error is a *model.FieldError
// naming the first parameter at fault, e.g. Field "params.path", Reason
// "must be a string, got number".
func (s Spec) Validate(params json.RawMessage) error {
	raw := bytes.TrimSpace(params)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		raw = []byte("{}")
	}
	if !json.Valid(raw) {
		var v any
		return badJSON(json.Unmarshal(raw, &v)) // for the syntax error's message
	}
	if got := jsonKind(raw); got != "object" {
		return model.Invalid("params", "must be a JSON object, got %s", got)
	}
	values, err := objectMembers(raw)
	if err != nil {
		return err
	}
	for _, m := range values {
		p, ok := s.Param(m.name)
		if !ok {
			if s.Open {
				continue
			}
			return model.Invalid("params."+m.name, "unknown parameter (%s takes %s)", s.Name, s.paramNames())
		}
		if err := p.check(m.value); err != nil {
			return err
		}
	}
	for _, p := range s.Params {
		if !p.Required {
			continue
		}
		i := slices.IndexFunc(values, func(m member) bool { return m.name == p.Name })
		if i < 0 || jsonKind(values[i].value) == "null" {
			return model.Invalid("params."+p.Name, "required")
		}
	}
	return nil
}

// paramNames lists the spec's parameter names for error messages.
func (s Spec) paramNames() string {
	if len(s.Params) == 0 {
		return "no parameters"
	}
	names := make([]string, len(s.Params))
	for i, p := range s.Params {
		names[i] = p.Name
	}
	return strings.Join(names, ", ")
}

// member is one name/value pair of a JSON object, in document order.
type member struct {
	name  string
	value json.RawMessage
}

// objectMembers splits a JSON object into its members, refusing malformed
// JSON, trailing data and duplicate names (encoding/json would silently keep
// the last one, so a typo'd copy could hide the value actually used).
func objectMembers(raw []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // the '{'
		return nil, badJSON(err)
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, badJSON(err)
		}
		name, _ := tok.(string) // inside an object, a key token is always a string
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, badJSON(err)
		}
		if slices.ContainsFunc(out, func(m member) bool { return m.name == name }) {
			return nil, model.Invalid("params."+name, "duplicate parameter")
		}
		out = append(out, member{name: name, value: v})
	}
	if _, err := dec.Token(); err != nil { // the '}'
		return nil, badJSON(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, model.Invalid("params", "bad JSON: data after the object")
	}
	return out, nil
}

func badJSON(err error) error {
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return model.Invalid("params", "bad JSON: %v", err)
}

// check verifies one present value against the parameter's kind.
func (p Param) check(v json.RawMessage) error {
	field := "params." + p.Name
	got := jsonKind(v)
	if got == "null" {
		return nil // absent; Validate checks Required
	}
	switch p.Kind {
	case KindString:
		var s string
		if got != "string" || json.Unmarshal(v, &s) != nil {
			return model.Invalid(field, "must be a string, got %s", got)
		}
		if p.Required && s == "" {
			return model.Invalid(field, "must not be empty")
		}
		if len(p.Enum) > 0 && !slices.Contains(p.Enum, s) {
			return model.Invalid(field, "must be one of %s, got %q", strings.Join(p.Enum, ", "), s)
		}
	case KindBool:
		if got != "boolean" {
			return model.Invalid(field, "must be a boolean, got %s", got)
		}
	case KindInt:
		if got != "number" {
			return model.Invalid(field, "must be an integer, got %s", got)
		}
		var n int64
		if err := json.Unmarshal(v, &n); err != nil {
			return model.Invalid(field, "must be an integer, got %s", v)
		}
		if p.NonNegative && n < 0 {
			return model.Invalid(field, "must not be negative, got %d", n)
		}
	case KindNumber:
		if got != "number" {
			return model.Invalid(field, "must be a number, got %s", got)
		}
	case KindDuration:
		var s string
		if got != "string" || json.Unmarshal(v, &s) != nil {
			return model.Invalid(field, "must be a duration string such as \"250ms\", got %s", got)
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return model.Invalid(field, "bad duration %q: want e.g. \"250ms\" or \"1m30s\"", s)
		}
		if d < 0 {
			return model.Invalid(field, "must not be negative, got %q", s)
		}
	case KindStrings:
		if got != "array" {
			return model.Invalid(field, "must be an array of strings, got %s", got)
		}
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return model.Invalid(field, "must be an array of strings: %v", err)
		}
		if p.Required && len(items) == 0 {
			return model.Invalid(field, "must not be empty")
		}
		for i, it := range items {
			if k := jsonKind(it); k != "string" {
				return model.Invalid(fmt.Sprintf("%s[%d]", field, i), "must be a string, got %s", k)
			}
		}
	case KindObject:
		if got != "object" {
			return model.Invalid(field, "must be an object, got %s", got)
		}
	default:
		return model.Invalid(field, "parameter has unknown kind %q in the job type's spec", p.Kind)
	}
	return nil
}

// jsonKind names the JSON type of a syntactically valid value by its first
// byte: object, array, string, number, boolean or null.
func jsonKind(v []byte) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}
