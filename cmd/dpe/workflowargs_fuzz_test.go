package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/template"
)

// FuzzArgValue checks the typing of `--arg K=V`: a flag splits at the
// first '=' and keeps every value of a key in order; a string arg goes as
// given; a list arg is its values unless one value is a JSON list; only a
// list (or an undeclared key) takes several values; whatever is accepted
// encodes as JSON.
func FuzzArgValue(f *testing.F) {
	types := []template.ArgType{"", template.ArgString, template.ArgInt, template.ArgNumber, template.ArgBool, template.ArgList, template.ArgMap, template.ArgDuration, template.ArgAny}
	for _, s := range [][3]string{{"path", "a.wav", ""}, {"files", `["a","b"]`, ""}, {"files", "a", "b"}, {"m", `{"k":1}`, ""}, {"n", "42", ""}, {"x", "a=b", "c"}, {"l", " [1, 2] ", ""}, {"s", "{", ""}} {
		for i := range types {
			f.Add(uint8(i), s[0], s[1], s[2], s[2] != "")
		}
	}
	f.Fuzz(func(t *testing.T, ti uint8, key, v1, v2 string, two bool) {
		typ := types[int(ti)%len(types)]
		kv := newArgFlag()
		flags := []string{key + "=" + v1}
		if two {
			flags = append(flags, key+"="+v2)
		}
		// The flag's key ends at its first '=', which key itself may hold.
		k, _, _ := strings.Cut(key, "=")
		for _, fl := range flags {
			if err := kv.Set(fl); err != nil {
				if k != "" {
					t.Fatalf("Set(%q): %v", fl, err)
				}
				return
			}
		}
		if k == "" {
			t.Fatalf("Set accepted an empty key")
		}
		vals := kv.vals[k]
		if len(kv.keys) != 1 || kv.keys[0] != k || len(vals) != len(flags) {
			t.Fatalf("flags %q: keys %q, values %q", flags, kv.keys, vals)
		}
		got, err := argValue(k, typ, vals)
		if err != nil {
			if len(vals) < 2 || typ == template.ArgList || typ == "" {
				t.Fatalf("argValue(%q, %q, %q): %v", k, typ, vals, err)
			}
			return
		}
		if len(vals) > 1 && typ != template.ArgList && typ != "" {
			t.Fatalf("a %q arg took %d values", typ, len(vals))
		}
		if _, err := json.Marshal(got); err != nil {
			t.Fatalf("argValue(%q, %q, %q) = %#v does not encode: %v", k, typ, vals, got, err)
		}
		switch typ {
		case template.ArgString, template.ArgInt, template.ArgNumber, template.ArgBool, template.ArgDuration:
			if got != vals[0] {
				t.Fatalf("a %s arg %q went as %#v", typ, vals[0], got)
			}
		case template.ArgList:
			l, ok := got.([]any)
			if !ok {
				t.Fatalf("list arg %q went as %#v", vals, got)
			}
			var asJSON []any
			if len(vals) == 1 && json.Unmarshal([]byte(strings.TrimSpace(vals[0])), &asJSON) == nil && strings.HasPrefix(strings.TrimSpace(vals[0]), "[") {
				if !reflect.DeepEqual(l, asJSON) {
					t.Fatalf("list arg %q went as %#v", vals, got)
				}
				return
			}
			want := make([]any, len(vals))
			for i, v := range vals {
				want[i] = v
			}
			if !reflect.DeepEqual(l, want) {
				t.Fatalf("list arg %q went as %#v", vals, got)
			}
		}
	})
}
