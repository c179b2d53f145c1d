package config

import (
	"errors"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var errEOF = io.EOF

// lineRE finds yaml.v3's "line N: reason".
var lineRE = regexp.MustCompile(`^line (\d+): (.*)$`)

// yamlError turns a yaml.v3 error into an *Error with the line.
func yamlError(name string, err error) error {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: name, Line: line, Reason: m[2]}
	}
	return &Error{File: name, Reason: msg}
}
