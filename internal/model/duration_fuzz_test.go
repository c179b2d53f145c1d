package model

import (
	"encoding/json"
	"testing"
)

// FuzzDuration checks Duration's JSON: whatever it accepts is not
// negative, writes back as a string, and that string reads back to the
// same value; what it refuses leaves the target untouched.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{`"1m30s"`, `"0s"`, `90000000000`, `"-1s"`, `-5`, `"1.5h"`, `null`, `"2562047h47m16.854775807s"`, `1e3`, `"x"`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		const sentinel = Duration(7)
		d := sentinel
		if err := d.UnmarshalJSON(b); err != nil {
			if d != sentinel {
				t.Fatalf("refused %q (%v) but set the value to %v", b, err, d)
			}
			return
		}
		if d < 0 {
			t.Fatalf("%q accepted as the negative %v", b, d.D())
		}
		out, err := json.Marshal(d)
		if err != nil {
			t.Fatalf("Marshal(%v): %v", d.D(), err)
		}
		var s string
		if err := json.Unmarshal(out, &s); err != nil {
			t.Fatalf("Marshal(%v) = %s, not a JSON string", d.D(), out)
		}
		var back Duration
		if err := json.Unmarshal(out, &back); err != nil || back != d {
			t.Fatalf("%q → %v → %s → %v, %v", b, d.D(), out, back.D(), err)
		}
	})
}
