// Package config reads dpe's one YAML configuration file (DESIGN §1, §9):
// the sections of every role in one document. Decoding is strict (unknown
// fields are refused) and every error names the file, the line and the
// reason; each section's own rules are checked by its role's Validate.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dpe-engine/dpe/internal/alert"
	"github.com/dpe-engine/dpe/internal/folderwatcher"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/scheduler"
	"github.com/dpe-engine/dpe/internal/tablewatcher"
)

// File is the whole configuration file.
type File struct {
	Server         Server                 `yaml:"server"`
	Processor      Processor              `yaml:"processor"`
	Worker         Worker                 `yaml:"worker"`
	Schedules      []scheduler.Config     `yaml:"schedules"`
	FolderWatchers []folderwatcher.Config `yaml:"folder_watchers"`
	TableWatchers  []tablewatcher.Config  `yaml:"table_watchers"`
	Locations      map[string][]string    `yaml:"locations"`
	// Alerts are the server's alert rules and receivers.
	Alerts alert.Config `yaml:"alerts"`

	path string
}

// Server is the server section.
type Server struct {
	DB        string        `yaml:"db"`
	Listen    string        `yaml:"listen"`
	Retention time.Duration `yaml:"retention"`
}

// Processor is the processor section.
type Processor struct {
	Quota      map[string]int    `yaml:"quota"`
	Labels     map[string]string `yaml:"labels"`
	AllowPaths []string          `yaml:"allow_paths"`
	// Exec enables the exec job type: the programs it may start and the
	// environment they get (see handlers.ExecPolicy). Off when empty.
	Exec Exec `yaml:"exec"`
}

// Exec is the processor's exec allow-list.
type Exec struct {
	// Allow: absolute paths of the programs exec jobs may start.
	Allow []string `yaml:"allow"`
	// Env: KEY=VALUE to set, or KEY to pass on from the processor.
	Env []string `yaml:"env"`
	// JobEnv: variables a job's params.env may set.
	JobEnv []string `yaml:"job_env"`
}

// Worker is the worker section.
type Worker struct {
	Mode      string         `yaml:"mode"`
	Group     string         `yaml:"group"`
	Templates []string       `yaml:"templates"`
	Quota     map[string]int `yaml:"quota"`
}

// Error is a configuration error: file, line (0 when unknown) and reason.
// It matches model.ErrInvalid.
type Error struct {
	File   string
	Line   int
	Reason string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Reason)
}

// Is makes errors.Is(err, model.ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == model.ErrInvalid }

// Load reads and validates the file at path.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Reason: err.Error()}
	}
	return Parse(path, b)
}

// Parse decodes and validates a configuration document; name is used in
// errors.
func Parse(name string, b []byte) (*File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, yamlError(name, err)
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, errEOF) {
		return nil, yamlError(name, err)
	}
	f.path = name
	if err := f.validate(&root); err != nil {
		return nil, err
	}
	return &f, nil
}

// Dir is the directory of the file, for relative paths in it.
func (f *File) Dir() string { return filepath.Dir(f.path) }

func (f *File) validate(root *yaml.Node) error {
	lines := entryLines(root)
	names := map[string]string{}
	check := func(section string, i int, name string, err error) error {
		line := lines[section][i]
		if err != nil {
			return &Error{File: f.path, Line: line, Reason: err.Error()}
		}
		if prev, dup := names[name]; dup {
			return &Error{File: f.path, Line: line, Reason: fmt.Sprintf("%s[%d]: name %q is already used by %s", section, i, name, prev)}
		}
		names[name] = fmt.Sprintf("%s[%d]", section, i)
		return nil
	}
	for i := range f.Schedules {
		if err := check("schedules", i, f.Schedules[i].Name, f.Schedules[i].Validate()); err != nil {
			return err
		}
	}
	for i := range f.FolderWatchers {
		if err := check("folder_watchers", i, f.FolderWatchers[i].Name, f.FolderWatchers[i].Validate()); err != nil {
			return err
		}
	}
	for i := range f.TableWatchers {
		if err := check("table_watchers", i, f.TableWatchers[i].Name, f.TableWatchers[i].Validate()); err != nil {
			return err
		}
	}
	for t, n := range f.Processor.Quota {
		if n < 1 {
			return &Error{File: f.path, Reason: fmt.Sprintf("processor.quota.%s: want at least 1, got %d", t, n)}
		}
	}
	for i, a := range f.Processor.Exec.Allow {
		if !filepath.IsAbs(a) || filepath.Clean(a) != a {
			return &Error{File: f.path, Reason: fmt.Sprintf("processor.exec.allow[%d]: %q must be a clean absolute path", i, a)}
		}
	}
	if err := f.Alerts.Validate(os.Getenv); err != nil {
		return &Error{File: f.path, Line: keyLine(root, "alerts"), Reason: strings.ReplaceAll(err.Error(), "\n", "; ")}
	}
	for name, roots := range f.Locations {
		if len(roots) == 0 {
			return &Error{File: f.path, Reason: fmt.Sprintf("locations.%s: give at least one root", name)}
		}
		for _, r := range roots {
			if !filepath.IsAbs(r) {
				return &Error{File: f.path, Reason: fmt.Sprintf("locations.%s: root %q must be an absolute path", name, r)}
			}
		}
	}
	return nil
}

// entryLines finds the line of each entry of the list sections.
func entryLines(root *yaml.Node) map[string][]int {
	out := map[string][]int{}
	if root == nil || len(root.Content) == 0 {
		return out
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		key, val := doc.Content[i], doc.Content[i+1]
		if val.Kind != yaml.SequenceNode {
			continue
		}
		for _, e := range val.Content {
			out[key.Value] = append(out[key.Value], e.Line)
		}
	}
	return out
}

// keyLine is the line of a top-level key (0 when absent).
func keyLine(root *yaml.Node, key string) int {
	if root == nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return 0
	}
	doc := root.Content[0]
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == key {
			return doc.Content[i].Line
		}
	}
	return 0
}
