package template

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

// FuzzConvertArg feeds convertArg what `dpe workflow start --arg K=V`
// sends for a declared arg (the string given, or the JSON it parsed for a
// list, map or untyped arg) and checks that an accepted value is a fixed
// point: converting it again, or after a JSON round trip as the server
// stores it, gives the same value.
func FuzzConvertArg(f *testing.F) {
	for _, s := range []string{"42", "-7", "3.5", "1e21", "true", "no", "1m30s", "-1s", "a.wav", `["a","b"]`, `{"k":1}`, "", "NaN", "9007199254740993"} {
		for i := range argTypes {
			f.Add(uint8(i), s)
		}
	}
	f.Fuzz(func(t *testing.T, ti uint8, s string) {
		if !utf8.ValidString(s) {
			return // JSON replaces invalid UTF-8 wherever it is sent
		}
		typ := argTypes[int(ti)%len(argTypes)]
		var in any = s
		if typ == ArgList || typ == ArgMap || typ == ArgAny {
			dec := json.NewDecoder(bytes.NewReader([]byte(s)))
			dec.UseNumber()
			var v any
			if dec.Decode(&v) == nil {
				in = v
			}
		}
		out, err := convertArg(typ, in)
		if err != nil {
			return
		}
		again, err := convertArg(typ, out)
		if err != nil || !reflect.DeepEqual(again, out) {
			t.Fatalf("%s %q: %#v converts again to %#v, %v", typ, s, out, again, err)
		}
		b, err := json.Marshal(out)
		if err != nil {
			t.Fatalf("%s %q: %#v does not encode: %v", typ, s, out, err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var back any
		if err := dec.Decode(&back); err != nil {
			t.Fatal(err)
		}
		stored, err := convertArg(typ, back)
		if err != nil || !reflect.DeepEqual(stored, out) {
			t.Fatalf("%s %q: %#v → %s → %#v, %v", typ, s, out, b, stored, err)
		}
	})
}
