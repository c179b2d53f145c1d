package jobtype

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/model"
)

func TestValidName(t *testing.T) {
	long := "a"
	for len(long) < 64 {
		long += "b"
	}
	tests := []struct {
		name string
		ok   bool
	}{
		{"noop", true},
		{"util.copy", true},
		{"audio.loudness", true},
		{"a", true},
		{"0x_1-2", true},
		{long, true},
		{long + "c", false},
		{"", false},
		{".copy", false},
		{"-x", false},
		{"Util.copy", false},
		{"util copy", false},
		{"util/copy", false},
		{"ü", false},
	}
	for _, tt := range tests {
		err := ValidName(tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
		if err != nil && !errors.Is(err, model.ErrInvalid) {
			t.Errorf("ValidName(%q) error %v does not match ErrInvalid", tt.name, err)
		}
	}
}

func TestBuiltinsWellFormed(t *testing.T) {
	specs := Builtins()
	for _, name := range []string{Noop, Copy, Move, Delete, Checksum, Mkdir, Exec} {
		if _, ok := specs[name]; !ok {
			t.Errorf("Builtins() lacks %q", name)
		}
	}
	for key, s := range specs {
		if key != s.Name {
			t.Errorf("key %q holds spec %q", key, s.Name)
		}
		if err := ValidName(s.Name); err != nil {
			t.Errorf("spec %q: %v", s.Name, err)
		}
		if s.Doc == "" {
			t.Errorf("spec %q has no doc", s.Name)
		}
		seen := map[string]bool{}
		for _, p := range s.Params {
			if !p.Kind.Valid() {
				t.Errorf("%s.%s: bad kind %q", s.Name, p.Name, p.Kind)
			}
			if seen[p.Name] {
				t.Errorf("%s.%s declared twice", s.Name, p.Name)
			}
			seen[p.Name] = true
			if p.Doc == "" {
				t.Errorf("%s.%s has no doc", s.Name, p.Name)
			}
		}
		// A spec must survive the trip to JSON (GET /v1/types).
		if _, err := json.Marshal(s); err != nil {
			t.Errorf("marshal %s: %v", s.Name, err)
		}
	}
	// Each call returns a fresh map.
	delete(specs, Noop)
	if _, ok := Builtins()[Noop]; !ok {
		t.Error("Builtins() shares its map between calls")
	}
}

func TestValidate(t *testing.T) {
	open := Spec{Name: "x.open", Open: true, Params: []Param{{Name: "n", Kind: KindInt}}}
	b := Builtins()
	tests := []struct {
		name   string
		spec   Spec
		params string
		field  string // "" = valid
		reason string
	}{
		{"empty params", b[Noop], ``, "", ""},
		{"null params", b[Noop], `null`, "", ""},
		{"empty object", b[Noop], ` {} `, "", ""},
		{"noop all", b[Noop], `{"sleep":"250ms","fail":true,"result":{"a":1}}`, "", ""},
		{"noop null param is absent", b[Noop], `{"sleep":null}`, "", ""},
		{"array params", b[Noop], `[]`, "params", "must be a JSON object, got array"},
		{"string params", b[Noop], `"x"`, "params", "must be a JSON object, got string"},
		{"bad json", b[Noop], `{"sleep":`, "params", "bad JSON: unexpected end of JSON input"},
		{"trailing data", b[Noop], `{} {}`, "params", "bad JSON"},
		{"duplicate", b[Noop], `{"fail":true,"fail":false}`, "params.fail", "duplicate parameter"},
		{"unknown", b[Noop], `{"slep":"1s"}`, "params.slep", "unknown parameter (noop takes sleep, fail, result, log)"},
		{"open allows unknown", open, `{"anything":[1,2]}`, "", ""},
		{"open still checks known", open, `{"n":"1"}`, "params.n", "must be an integer, got string"},
		{"bad duration", b[Noop], `{"sleep":"abc"}`, "params.sleep", `bad duration "abc": want e.g. "250ms" or "1m30s"`},
		{"duration number", b[Noop], `{"sleep":250}`, "params.sleep", `must be a duration string such as "250ms", got number`},
		{"negative duration", b[Noop], `{"sleep":"-1s"}`, "params.sleep", `must not be negative, got "-1s"`},
		{"bool as string", b[Noop], `{"fail":"true"}`, "params.fail", "must be a boolean, got string"},
		{"object as array", b[Noop], `{"result":[1]}`, "params.result", "must be an object, got array"},
		{"copy ok", b[Copy], `{"from":"/a","to":"/b","overwrite":false}`, "", ""},
		{"copy missing to", b[Copy], `{"from":"/a"}`, "params.to", "required"},
		{"copy null to", b[Copy], `{"from":"/a","to":null}`, "params.to", "required"},
		{"copy empty from", b[Copy], `{"from":"","to":"/b"}`, "params.from", "must not be empty"},
		{"copy number from", b[Copy], `{"from":1,"to":"/b"}`, "params.from", "must be a string, got number"},
		{"checksum default", b[Checksum], `{"path":"/a"}`, "", ""},
		{"checksum md5", b[Checksum], `{"path":"/a","algorithm":"md5"}`, "", ""},
		{"checksum enum", b[Checksum], `{"path":"/a","algorithm":"sha1"}`, "params.algorithm", `must be one of sha256, md5, got "sha1"`},
		{"delete missing_ok", b[Delete], `{"path":"/a","missing_ok":false}`, "", ""},
		{"mkdir no path", b[Mkdir], `{}`, "params.path", "required"},
		{"exec ok", b[Exec], `{"argv":["ls","-l"],"dir":"/tmp","env":["A=1"],"timeout":"5s","max_output":100}`, "", ""},
		{"exec empty argv", b[Exec], `{"argv":[]}`, "params.argv", "must not be empty"},
		{"exec argv string", b[Exec], `{"argv":"ls -l"}`, "params.argv", "must be an array of strings, got string"},
		{"exec argv item", b[Exec], `{"argv":["ls",3]}`, "params.argv[1]", "must be a string, got number"},
		{"exec max_output fraction", b[Exec], `{"argv":["ls"],"max_output":1.5}`, "params.max_output", "must be an integer, got 1.5"},
		{"exec max_output negative", b[Exec], `{"argv":["ls"],"max_output":-1}`, "params.max_output", "must not be negative, got -1"},
		{"exec max_output huge", b[Exec], `{"argv":["ls"],"max_output":1e30}`, "params.max_output", "must be an integer, got 1e30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate(json.RawMessage(tt.params))
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate(%s) = %v, want nil", tt.params, err)
				}
				return
			}
			fe, ok := err.(*model.FieldError)
			if !ok {
				t.Fatalf("Validate(%s) = %T %v, want *model.FieldError", tt.params, err, err)
			}
			if fe.Field != tt.field || !strings.HasPrefix(fe.Reason, tt.reason) {
				t.Errorf("Validate(%s) = {%q, %q}, want {%q, %q...}", tt.params, fe.Field, fe.Reason, tt.field, tt.reason)
			}
			if !errors.Is(err, model.ErrInvalid) {
				t.Errorf("error does not match model.ErrInvalid")
			}
		})
	}
}

func FuzzValidate(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"argv":["a"]}`, `{"argv":[1]}`, `[`, `{"a":1,"a":2}`, `{"timeout":"1s","max_output":3}`} {
		f.Add(s)
	}
	spec := Builtins()[Exec]
	f.Fuzz(func(t *testing.T, params string) {
		err := spec.Validate(json.RawMessage(params))
		if err == nil {
			return
		}
		if _, ok := err.(*model.FieldError); !ok {
			t.Fatalf("Validate(%q) = %T, want *model.FieldError", params, err)
		}
	})
}
