package template

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// exampleFiles returns the example templates and the DESIGN §9 example.
func exampleFiles(t testing.TB) []string {
	files, err := filepath.Glob("../../examples/templates/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %d examples in examples/templates", len(files))
	}
	return append(files, "testdata/design.yaml")
}

func TestExamplesParse(t *testing.T) {
	opts := ParseOptions{
		KnownJobType:  func(s string) bool { return builtinJobTypes[s] },
		KnownTemplate: func(s string) bool { return s == "other-template" },
	}
	for _, f := range exampleFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			tp, err := Parse(data, opts)
			if err != nil {
				t.Fatalf("%s:\n%v", f, err)
			}
			given := map[string]any{}
			for _, name := range tp.ArgNames {
				if spec := tp.Args[name]; spec.Required {
					given[name] = map[ArgType]any{ArgString: "/in/a.wav", ArgList: []any{"/in/a.wav"}}[spec.Type]
				}
			}
			if _, err := tp.BindArgs(given); err != nil {
				t.Errorf("BindArgs: %v", err)
			}
			roundTrip(t, tp, opts)
		})
	}
}

// roundTrip checks that the exported YAML parses back to the same
// canonical form, and that the canonical JSON parses too.
func roundTrip(t testing.TB, tp *Template, opts ParseOptions) {
	t.Helper()
	c1, err := tp.Canonical()
	if err != nil {
		t.Fatalf("Canonical: %v", err)
	}
	y, err := tp.YAML()
	if err != nil {
		t.Fatalf("YAML: %v", err)
	}
	back, err := Parse(y, opts)
	if err != nil {
		t.Fatalf("exported YAML is refused:\n%v\n%s", err, y)
	}
	c2, err := back.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c1, c2) {
		t.Fatalf("canonical forms differ after a YAML round trip:\n%s\n%s\nYAML:\n%s", c1, c2, y)
	}
	fromJSON, err := Parse(c1, opts)
	if err != nil {
		t.Fatalf("canonical JSON is refused:\n%v\n%s", err, c1)
	}
	c3, err := fromJSON.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c1, c3) {
		t.Fatalf("canonical forms differ after a JSON round trip:\n%s\n%s", c1, c3)
	}
}
