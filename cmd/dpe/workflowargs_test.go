package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/dpe-engine/dpe/internal/template"
)

func TestArgValue(t *testing.T) {
	tests := []struct {
		name string
		typ  template.ArgType
		vals []string
		want any
		bad  bool
	}{
		{"list repeated", template.ArgList, []string{"a", "b"}, []any{"a", "b"}, false},
		{"list one element", template.ArgList, []string{"a"}, []any{"a"}, false},
		{"list as JSON", template.ArgList, []string{`["a", 2]`}, []any{"a", float64(2)}, false},
		{"list with a bracket text", template.ArgList, []string{"[draft"}, []any{"[draft"}, false},
		{"string stays text", template.ArgString, []string{`{"x":1}`}, `{"x":1}`, false},
		{"int as text", template.ArgInt, []string{"42"}, "42", false},
		{"map as JSON", template.ArgMap, []string{`{"x":1}`}, map[string]any{"x": float64(1)}, false},
		{"undeclared repeated", "", []string{"a", "b"}, []any{"a", "b"}, false},
		{"undeclared JSON", "", []string{`[1]`}, []any{float64(1)}, false},
		{"string repeated", template.ArgString, []string{"a", "b"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := argValue("k", tt.typ, tt.vals)
			if tt.bad {
				if err == nil {
					t.Fatalf("got %v; want an error", got)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

func TestAbsIfRelative(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile("take1.wav", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir("clips", 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in, want any
	}{
		{"take1.wav", filepath.Join(dir, "take1.wav")},
		{"./clips", filepath.Join(dir, "clips")},
		{"missing.wav", "missing.wav"}, // names nothing here: a plain string
		{"/abs/x.wav", "/abs/x.wav"},
		{"loc:archive/x.wav", "loc:archive/x.wav"},
		{"http://host/x", "http://host/x"},
		{"", ""},
		{42, 42},
	}
	for _, tt := range tests {
		if got := absIfRelative(tt.in); got != tt.want {
			t.Errorf("absIfRelative(%#v) = %#v, want %#v", tt.in, got, tt.want)
		}
	}
}
