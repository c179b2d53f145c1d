package template

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"time"

	"github.com/expr-lang/expr/types"

	"github.com/dpe-engine/dpe/internal/model"
)

// ArgType is the declared type of a template argument.
type ArgType string

// Argument types. A duration arg is a Go duration string ("90s"); it stays
// a string in expressions (use duration(args.x) to compute with it) so
// that it survives a JSON round trip unchanged.
const (
	ArgString   ArgType = "string"
	ArgInt      ArgType = "int"
	ArgNumber   ArgType = "number"
	ArgBool     ArgType = "bool"
	ArgList     ArgType = "list"
	ArgMap      ArgType = "map"
	ArgDuration ArgType = "duration"
	ArgAny      ArgType = "any"
)

// argTypes lists the valid types in the order they are reported.
var argTypes = []ArgType{ArgString, ArgInt, ArgNumber, ArgBool, ArgList, ArgMap, ArgDuration, ArgAny}

// ArgSpec declares one template argument.
type ArgSpec struct {
	Name        string
	Type        ArgType // "any" when not written
	Required    bool
	Default     any // valid when HasDefault; already of Type
	HasDefault  bool
	Description string
	Line        int
}

// nature is the type expressions are compiled with. An optional arg with
// no default may be absent (nil), so it is typed any.
func (s ArgSpec) nature() types.Type {
	if !s.Required && !s.HasDefault {
		return types.Any
	}
	switch s.Type {
	case ArgString, ArgDuration:
		return types.String
	case ArgInt:
		return types.Int
	case ArgNumber:
		return types.Float64
	case ArgBool:
		return types.Bool
	case ArgList:
		return types.Array(types.Any)
	case ArgMap:
		return types.Map{types.Extra: types.Any}
	}
	return types.Any
}

// BindArgs checks the given arguments against the declarations and returns
// the instance's args: defaults applied, values converted to their
// declared type (int as int, number as float64, list as []any, map as
// map[string]any; int, number and bool also accept their string forms, as
// a command line gives them). Unknown, missing required and ill-typed args
// are each a *model.FieldError ("args.X"); all are returned, joined. A nil
// given value counts as absent. BindArgs(BindArgs(x)) == BindArgs(x), also
// after a JSON round trip.
func (t *Template) BindArgs(given map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(t.Args))
	var errs []error
	names := make([]string, 0, len(given))
	for k := range given {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if _, ok := t.Args[k]; !ok {
			errs = append(errs, model.Invalid("args."+k, "unknown argument (template %s takes %s)", t.Name, t.argList()))
		}
	}
	for _, name := range t.ArgNames {
		spec := t.Args[name]
		v, ok := given[name]
		if !ok || v == nil {
			switch {
			case spec.HasDefault:
				out[name] = copyLiteral(spec.Default)
			case spec.Required:
				errs = append(errs, model.Invalid("args."+name, "required"))
			}
			continue
		}
		cv, err := convertArg(spec.Type, v)
		if err != nil {
			errs = append(errs, model.Invalid("args."+name, "%v", err))
			continue
		}
		out[name] = cv
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// argList names the declared args for messages.
func (t *Template) argList() string {
	if len(t.ArgNames) == 0 {
		return "no args"
	}
	s := ""
	for i, n := range t.ArgNames {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

// convertArg converts v to typ or says why it cannot.
func convertArg(typ ArgType, v any) (any, error) {
	if jn, ok := v.(json.Number); ok {
		// A decoder with UseNumber: read it as the number it is.
		if i, err := jn.Int64(); err == nil {
			v = i
		} else if f, err := jn.Float64(); err == nil {
			v = f
		}
	}
	switch typ {
	case ArgString:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case ArgDuration:
		switch x := v.(type) {
		case time.Duration:
			if x < 0 {
				return nil, fmt.Errorf("duration %s must not be negative", x)
			}
			return x.String(), nil
		case string:
			if _, err := parseDuration(x, true); err != nil {
				return nil, err
			}
			return x, nil
		}
	case ArgInt:
		if s, ok := v.(string); ok {
			n, err := strconv.Atoi(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an int", s)
			}
			return n, nil
		}
		n, err := normalize(v, 0)
		if err == nil {
			switch x := n.(type) {
			case int:
				return x, nil
			case float64:
				if x == math.Trunc(x) && math.Abs(x) <= 1<<53 {
					return int(x), nil
				}
				return nil, fmt.Errorf("%v is not an int", x)
			}
		}
	case ArgNumber:
		if s, ok := v.(string); ok {
			f, err := strconv.ParseFloat(s, 64)
			if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("%q is not a number", s)
			}
			return f, nil
		}
		n, err := normalize(v, 0)
		if err == nil {
			switch x := n.(type) {
			case int:
				return float64(x), nil
			case float64:
				return x, nil
			}
		}
	case ArgBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			b, err := strconv.ParseBool(x)
			if err != nil {
				return nil, fmt.Errorf("%q is not a bool", x)
			}
			return b, nil
		}
	case ArgList:
		if k := reflect.ValueOf(v).Kind(); k == reflect.Slice || k == reflect.Array {
			if _, isBytes := v.([]byte); !isBytes {
				return jsonNormalize(v)
			}
		}
	case ArgMap:
		if reflect.ValueOf(v).Kind() == reflect.Map {
			return jsonNormalize(v)
		}
	case ArgAny:
		return jsonNormalize(v)
	default:
		return nil, fmt.Errorf("unknown type %q", typ)
	}
	return nil, fmt.Errorf("got %s, want %s", describe(v), article(typ))
}

// jsonNormalize normalizes v and turns integral floats into ints, so that
// a value reads the same before and after a JSON round trip.
func jsonNormalize(v any) (any, error) {
	n, err := normalize(v, 0)
	if err != nil {
		return nil, err
	}
	return intsFromFloats(n), nil
}

// intsFromFloats replaces integral float64s that fit an int64 by ints:
// JSON writes such a float as its digits, which read back as an int, so a
// smaller bound (±2^53) let 1.00001e16 change type on its round trip.
func intsFromFloats(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			return int(x)
		}
	case []any:
		for i, e := range x {
			x[i] = intsFromFloats(e)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = intsFromFloats(e)
		}
	}
	return v
}

// describe names the type of a given value for messages.
func describe(v any) string {
	if n, err := normalize(v, 0); err == nil {
		return typeName(n)
	}
	return fmt.Sprintf("%T", v)
}

// article renders a type with its article: "a string", "an int".
func article(t ArgType) string {
	switch t {
	case ArgInt, ArgAny:
		return "an " + string(t)
	}
	return "a " + string(t)
}

// copyLiteral deep-copies a literal so callers may change what they get.
func copyLiteral(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = copyLiteral(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = copyLiteral(e)
		}
		return out
	}
	return v
}

// validArgType reports whether t is a known type.
func validArgType(t ArgType) bool {
	for _, a := range argTypes {
		if a == t {
			return true
		}
	}
	return false
}

// convertDefault checks a default written in the template: unlike
// BindArgs it takes no string for an int, number or bool.
func convertDefault(typ ArgType, v any) (any, error) {
	if _, isString := v.(string); isString {
		switch typ {
		case ArgInt, ArgNumber, ArgBool:
			return nil, fmt.Errorf("got a string, want %s", article(typ))
		}
	}
	return convertArg(typ, v)
}
