package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestScanJSON(t *testing.T) {
	caps := []itemCap{{"jobs", 2}}
	tests := []struct {
		name, body string
		dup        string // the path of a duplicate key
		capped     bool
		bad        bool // another error
	}{
		{"object", `{"a":1,"b":[1,2,3],"c":{"d":null}}`, "", false, false},
		{"duplicate", `{"a":1,"a":2}`, "a", false, false},
		{"duplicate deep", `{"x":[{"a":1},{"b":{"c":1,"c":2}}]}`, "x[1].b.c", false, false},
		{"duplicate escaped", `{"a":1,"\u0061":2}`, "a", false, false},
		{"key equal to a value", `{"a":"b","b":"a"}`, "", false, false},
		{"cap reached", `{"jobs":[{},{}]}`, "", false, false},
		{"cap passed", `{"jobs":[{},{},{}]}`, "", true, false},
		{"cap only at the top", `{"x":{"jobs":[1,2,3]}}`, "", false, false},
		{"two values", `{} {}`, "", false, true},
		{"truncated", `{"a":[1,2`, "", false, true},
		{"truncated after a key", `{"type":"noop",`, "", false, true},
		{"scalar", `5`, "", false, false},
		{"empty", ``, "", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := scanJSON(strings.NewReader(tc.body), caps)
			var de *dupError
			var ce *capError
			switch {
			case tc.dup != "":
				if !errors.As(err, &de) || de.path != tc.dup {
					t.Fatalf("scan = %v, want a duplicate at %s", err, tc.dup)
				}
			case tc.capped:
				if !errors.As(err, &ce) || ce.field != "jobs" {
					t.Fatalf("scan = %v, want the jobs cap", err)
				}
			case tc.bad:
				if err == nil {
					t.Fatal("scan accepted a bad body")
				}
			case err != nil:
				t.Fatalf("scan = %v, want nil", err)
			}
		})
	}
}

// FuzzScanJSON checks scanJSON against encoding/json on valid JSON: a
// duplicate is reported exactly when an object holds a key twice, the cap
// exactly when the capped array is too long, and nothing else. On invalid
// JSON, which the decoder after it refuses, it need only not panic.
func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{`{"jobs":[{"type":"noop"}]}`, `{"a":1,"a":2}`, `[1,{"b":{"b":1}}]`, `{"jobs":[1,2,3,4]}`, `"x"`, `{`, `{"a":{"a":{"a":1}}}`, ` {"\u00e9":1,"é":2} `, `{"a\"b":1,"a\"b":2}`, `{"x":"\\","x":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := scanJSON(bytes.NewReader(b), []itemCap{{"jobs", 3}})
		if !json.Valid(b) {
			return
		}
		var de *dupError
		var ce *capError
		dup := hasDuplicate(t, b)
		var m map[string]json.RawMessage
		var l []json.RawMessage
		over := json.Unmarshal(b, &m) == nil && json.Unmarshal(m["jobs"], &l) == nil && len(l) > 3
		switch {
		case errors.As(err, &de):
			if !dup {
				t.Fatalf("duplicate %s reported in %q, which has none", de.path, b)
			}
		case errors.As(err, &ce):
			if !over {
				t.Fatalf("cap reported in %q", b)
			}
		case err != nil:
			t.Fatalf("valid JSON %q refused: %v", b, err)
		case dup:
			t.Fatalf("duplicate in %q not found", b)
		case over:
			t.Fatalf("long jobs array in %q not capped", b)
		}
	})
}

// hasDuplicate reports whether the valid JSON b has an object with a key
// twice, by decoding it into ordered key lists.
func hasDuplicate(t *testing.T, b []byte) bool {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	type obj struct {
		keys    map[string]bool
		wantKey bool
	}
	var stack []*obj
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{':
				if n := len(stack); n > 0 && stack[n-1] != nil {
					stack[n-1].wantKey = true
				}
				stack = append(stack, &obj{keys: map[string]bool{}, wantKey: true})
			case '[':
				if n := len(stack); n > 0 && stack[n-1] != nil {
					stack[n-1].wantKey = true
				}
				stack = append(stack, nil)
			default:
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if n := len(stack); n > 0 && stack[n-1] != nil {
			o := stack[n-1]
			if o.wantKey {
				k := tok.(string)
				if o.keys[k] {
					return true
				}
				o.keys[k] = true
				o.wantKey = false
			} else {
				o.wantKey = true
			}
		}
	}
}
