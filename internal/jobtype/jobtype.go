// Package jobtype describes job types as the server knows them: their names
// and the parameters they take. It holds no handler code; handlers live in
// internal/handlers and reuse these specs to decode their params, so a job
// refused here at submission would be refused the same way by a processor.
package jobtype

import (
	"fmt"

	"github.com/dpe-engine/dpe/internal/model"
)

// Kind is the JSON type a parameter must have.
type Kind string

// Parameter kinds.
const (
	KindString   Kind = "string"   // a JSON string
	KindBool     Kind = "bool"     // true or false
	KindInt      Kind = "int"      // a JSON number without a fraction
	KindNumber   Kind = "number"   // any JSON number
	KindDuration Kind = "duration" // a Go duration string such as "250ms", not negative
	KindStrings  Kind = "strings"  // an array of strings
	KindObject   Kind = "object"   // any JSON object
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindString, KindBool, KindInt, KindNumber, KindDuration, KindStrings, KindObject:
		return true
	}
	return false
}

// Param describes one parameter of a job type. A JSON null counts as absent.
type Param struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Required: the parameter must be present; a required string or
	// strings parameter must also be non-empty.
	Required bool   `json:"required,omitempty"`
	Doc      string `json:"doc,omitempty"`
	// Enum, when set, lists the values a string parameter may take.
	Enum []string `json:"enum,omitempty"`
	// NonNegative refuses negative values of an int parameter.
	NonNegative bool `json:"non_negative,omitempty"`
	// Path marks a file path: the CLI turns a relative one into an
	// absolute one against its working directory before submitting, since
	// the job may run on another machine with another working directory.
	Path bool `json:"path,omitempty"`
	// Default is the value the handler uses when the parameter is absent.
	// It is documentation: Validate does not fill it in.
	Default any `json:"default,omitempty"`
}

// Spec describes one job type.
type Spec struct {
	Name   string  `json:"name"`
	Doc    string  `json:"doc,omitempty"`
	Params []Param `json:"params"`
	// Open allows parameters that Params does not list; they are not checked.
	Open bool `json:"open,omitempty"`
}

// Param returns the parameter called name.
func (s Spec) Param(name string) (Param, bool) {
	for _, p := range s.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// maxNameLen is the longest job type name ValidName accepts.
const maxNameLen = 64

// ValidName checks a job type name: a lower-case letter or digit, then up
// to 63 lower-case letters, digits, '.', '_' or '-'. The error carries no
// field name (callers know which field they checked); it matches
// model.ErrInvalid.
func ValidName(name string) error {
	if name == "" {
		return &model.FieldError{Reason: "empty job type name"}
	}
	if len(name) > maxNameLen {
		return &model.FieldError{Reason: "job type name longer than 64 characters"}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			i > 0 && (c == '.' || c == '_' || c == '-')
		if !ok {
			return &model.FieldError{Reason: fmt.Sprintf("bad job type name %q: use lower-case letters, digits, '.', '_' or '-', starting with a letter or digit", name)}
		}
	}
	return nil
}
