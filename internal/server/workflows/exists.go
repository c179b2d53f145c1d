package workflows

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/dpe-engine/dpe/internal/model"
)

// ExistsError refuses a start whose name is taken by an instance of
// another template or with other arguments: a start is idempotent by name
// only when it asks for the same thing. It matches model.ErrConflict.
type ExistsError struct {
	Instance model.Instance
	// Template is the template the refused start asked for.
	Template string
	// Differ lists the argument names whose values differ, by name.
	Differ []string
}

func (e *ExistsError) Error() string {
	in := e.Instance
	if in.Template != e.Template {
		return fmt.Sprintf("instance %q exists (id %d, %s) of template %s, not %s: start under another name",
			in.Name, in.ID, in.State, in.Template, e.Template)
	}
	hint := "start under another name"
	if in.State == model.InstanceFailed || in.State == model.InstanceCanceled {
		hint += fmt.Sprintf(", or resume it with its own args (dpe workflow retry %d)", in.ID)
	}
	return fmt.Sprintf("instance %q exists (id %d, %s) with different args (%s): %s",
		in.Name, in.ID, in.State, strings.Join(e.Differ, ", "), hint)
}

// Is makes errors.Is(err, model.ErrConflict) true.
func (e *ExistsError) Is(target error) bool { return target == model.ErrConflict }

// sameStart returns nil when the existing instance is what spec (prepared:
// args bound to their defaults) asks for, else an *ExistsError. Args are
// compared as JSON values, so key order and the engine's storage format
// do not matter.
func sameStart(existing model.Instance, spec model.InstanceSpec) error {
	if existing.Template != spec.Template {
		return &ExistsError{Instance: existing, Template: spec.Template}
	}
	a, errA := decodeArgs(existing.Args)
	b, errB := decodeArgs(spec.Args)
	if errA != nil || errB != nil {
		if bytes.Equal(existing.Args, spec.Args) {
			return nil
		}
		return &ExistsError{Instance: existing, Template: spec.Template, Differ: []string{"args"}}
	}
	var differ []string
	for k, v := range a {
		if w, ok := b[k]; !ok || !reflect.DeepEqual(v, w) {
			differ = append(differ, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			differ = append(differ, k)
		}
	}
	if len(differ) == 0 {
		return nil
	}
	sort.Strings(differ)
	return &ExistsError{Instance: existing, Template: spec.Template, Differ: differ}
}

func decodeArgs(b json.RawMessage) (map[string]any, error) {
	m := map[string]any{}
	if len(b) == 0 || string(b) == "null" {
		return m, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return normalize(m).(map[string]any), nil
}

// normalize turns json.Numbers into their canonical text, so 1 and 1.0
// stored by different engines compare equal.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		return x
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	}
	return v
}
