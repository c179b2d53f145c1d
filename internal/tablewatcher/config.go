package tablewatcher

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/template"
)

// Defaults of Config.
const (
	DefaultPoll          = 2 * time.Second
	DefaultFullPassEvery = 30
	// MinPoll is the shortest poll interval accepted: a content database
	// is somebody else's production system.
	MinPoll = 100 * time.Millisecond
)

// Events a watcher reports.
const (
	EventCreated = "created"
	EventUpdated = "updated"
	EventDeleted = "deleted"
)

// First start policies: what to do with the rows that exist when the
// watcher's trigger has no state yet.
const (
	FirstStartBaseline = "baseline" // remember them, start nothing
	FirstStartFire     = "fire"     // treat them as created
)

// Config is one entry of table_watchers (DESIGN §9). Validate fills in the
// defaults and compiles the filter; a Config must be validated before use.
type Config struct {
	Name string `yaml:"name"`
	// DSN names the content database: postgres://..., mysql://user:pass@
	// host:port/db?param=value or sqlite:PATH.
	DSN string `yaml:"dsn"`
	// Table is "table" or "schema.table".
	Table string `yaml:"table"`
	// Key lists the columns that identify a row (its primary key).
	Key []string `yaml:"key"`
	// VersionColumn, when set, is a column that grows whenever a row
	// changes (a modified time or a row version); it makes polls
	// incremental. Without it every poll is a full pass.
	VersionColumn string `yaml:"version_column,omitempty"`
	// Columns lists the columns to read (default: all). Key, version and
	// filter columns are read in any case.
	Columns []string `yaml:"columns,omitempty"`
	// Poll is the interval between polls (default 2s).
	Poll time.Duration `yaml:"poll,omitempty"`
	// FullPassEvery makes every n-th poll a full pass, which finds
	// deletions (default 30).
	FullPassEvery int `yaml:"full_pass_every,omitempty"`
	// Filter is an expression over row; a row for which it is false is
	// treated as absent.
	Filter string `yaml:"filter,omitempty"`
	// On maps events (created, updated, deleted) to what they start. Args
	// may hold ${{ }} expressions over row, evaluated by the server.
	On map[string]Action `yaml:"on"`
	// FirstStart is baseline (default) or fire.
	FirstStart string `yaml:"first_start,omitempty"`
	// DryRun records what would start without starting it.
	DryRun bool `yaml:"dry_run,omitempty"`

	filter     *vm.Program // compiled Filter, nil without one
	filterCols []string    // columns the filter reads as row.<name>
	source     source      // parsed DSN
}

// Action is what one event starts.
type Action struct {
	// Template names the workflow template to start.
	Template string `yaml:"template"`
	// Args are the instance's arguments, sent to the server as written:
	// ${{ }} expressions in them see the row as row (the data of the
	// observed item) and are evaluated by the server.
	Args map[string]any `yaml:"args,omitempty"`
	// Priority of the instance (higher first).
	Priority int `yaml:"priority,omitempty"`
}

var (
	// identRe is what a table, schema or column name from config may be:
	// safe to quote in every dialect, at most PostgreSQL's 63 bytes.
	identRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
	// nameRe is what a watcher (trigger) name may be.
	nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)
	// templateRe is a workflow template name (as the template package
	// requires).
	templateRe = regexp.MustCompile(`^[a-z0-9._-]{1,128}$`)
)

// Validate fills in defaults, compiles the filter and checks every field,
// returning every problem found as *model.FieldError values (joined), each
// naming the watcher and field, e.g.
// table_watchers[music].table: unsafe identifier "music; drop table x".
func (c *Config) Validate() error {
	label := "table_watchers[" + c.Name + "]"
	if c.Name == "" {
		label = "table_watchers[?]"
	}
	return c.validate(label)
}

// ValidateAll validates every watcher (labelled by name, or by index when
// unnamed) and refuses duplicate names.
func ValidateAll(cfgs []Config) error {
	var errs []error
	seen := make(map[string]int, len(cfgs))
	for i := range cfgs {
		c := &cfgs[i]
		label := fmt.Sprintf("table_watchers[%d]", i)
		if c.Name != "" {
			label = "table_watchers[" + c.Name + "]"
			if j, dup := seen[c.Name]; dup {
				errs = append(errs, model.Invalid(label+".name", "duplicate: table_watchers[%d] has the same name", j))
			}
			seen[c.Name] = i
		}
		errs = append(errs, c.validate(label))
	}
	return errors.Join(errs...)
}

func (c *Config) validate(label string) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, model.Invalid(label+"."+field, format, args...))
	}
	switch {
	case c.Name == "":
		bad("name", "required")
	case !nameRe.MatchString(c.Name):
		bad("name", "%q: want 1 to 128 of [A-Za-z0-9._-], starting with a letter or digit", c.Name)
	}

	if c.DSN == "" {
		bad("dsn", "required: postgres://..., mysql://... or sqlite:PATH")
	} else if src, err := parseSource(c.DSN); err != nil {
		bad("dsn", "%v", err)
	} else {
		c.source = src
	}

	switch parts := strings.Split(c.Table, "."); {
	case c.Table == "":
		bad("table", "required")
	case len(parts) > 2:
		bad("table", "%q: want table or schema.table", c.Table)
	default:
		for _, p := range parts {
			if !identRe.MatchString(p) {
				bad("table", "%s", unsafe(c.Table))
				break
			}
		}
	}

	if len(c.Key) == 0 {
		bad("key", "required: the columns that identify a row")
	}
	checkColumns(c.Key, "key", bad)
	if c.VersionColumn != "" && !identRe.MatchString(c.VersionColumn) {
		bad("version_column", "%s", unsafe(c.VersionColumn))
	}
	checkColumns(c.Columns, "columns", bad)

	switch {
	case c.Poll == 0:
		c.Poll = DefaultPoll
	case c.Poll < MinPoll:
		bad("poll", "%s is below the minimum %s", c.Poll, MinPoll)
	}
	switch {
	case c.FullPassEvery == 0:
		c.FullPassEvery = DefaultFullPassEvery
	case c.FullPassEvery < 0:
		bad("full_pass_every", "%d: want a number of polls, at least 1", c.FullPassEvery)
	}

	c.filter, c.filterCols = nil, nil
	if strings.TrimSpace(c.Filter) != "" {
		prog, cols, err := compileFilter(c.Filter)
		if err != nil {
			bad("filter", "%v", err)
		} else {
			c.filter, c.filterCols = prog, cols
		}
	}

	if len(c.On) == 0 {
		bad("on", "required: at least one of created, updated, deleted")
	}
	for _, ev := range slices.Sorted(maps.Keys(c.On)) {
		a := c.On[ev]
		switch ev {
		case EventCreated, EventUpdated, EventDeleted:
		default:
			bad("on", "unknown event %q: want created, updated or deleted", ev)
			continue
		}
		switch {
		case a.Template == "":
			bad("on."+ev+".template", "required")
		case !templateRe.MatchString(a.Template):
			bad("on."+ev+".template", "%q is not a template name: want 1 to 128 of [a-z0-9._-]", a.Template)
		}
		if a.Args != nil {
			if _, err := template.CompileData(a.Args, "on."+ev+".args"); err != nil {
				errs = append(errs, prefixProblems(label, err))
			}
		}
	}

	switch c.FirstStart {
	case "":
		c.FirstStart = FirstStartBaseline
	case FirstStartBaseline, FirstStartFire:
	default:
		bad("first_start", "%q: want baseline or fire", c.FirstStart)
	}
	return errors.Join(errs...)
}

// checkColumns refuses unsafe and repeated column names in list.
func checkColumns(list []string, field string, bad func(field, format string, args ...any)) {
	seen := make(map[string]bool, len(list))
	for i, col := range list {
		f := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case !identRe.MatchString(col):
			bad(f, "%s", unsafe(col))
		case seen[strings.ToLower(col)]:
			bad(f, "%q is listed twice", col)
		}
		seen[strings.ToLower(col)] = true
	}
}

// unsafe is the reason given for an identifier that cannot be used.
func unsafe(id string) string {
	return fmt.Sprintf("unsafe identifier %q: want a letter or _ then letters, digits or _, at most 63 in all", id)
}

// prefixProblems turns the template package's problems with on.*.args
// into field errors under label.
func prefixProblems(label string, err error) error {
	var ve *template.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("%s: %w", label, err)
	}
	errs := make([]error, 0, len(ve.Problems))
	for _, p := range ve.Problems {
		errs = append(errs, model.Invalid(label+"."+p.Field, "%s", p.Reason))
	}
	return errors.Join(errs...)
}

// compileFilter compiles a filter over row to a program that must yield a
// bool, and returns the columns it names as row.<name> or row["name"]
// (so they are read even when columns leaves them out, and checked to
// exist).
func compileFilter(src string) (*vm.Program, []string, error) {
	refs := &rowRefs{}
	prog, err := expr.Compile(src,
		expr.Env(map[string]any{"row": map[string]any{}}),
		expr.AsBool(),
		expr.Patch(refs),
	)
	if err != nil {
		return nil, nil, err
	}
	for _, col := range refs.cols {
		if !identRe.MatchString(col) {
			return nil, nil, fmt.Errorf("row.%s: %s", col, unsafe(col))
		}
	}
	return prog, refs.cols, nil
}

// rowRefs collects the constant member names read from row.
type rowRefs struct{ cols []string }

// Visit records row.<name>.
func (r *rowRefs) Visit(node *ast.Node) {
	m, ok := (*node).(*ast.MemberNode)
	if !ok {
		return
	}
	id, ok := m.Node.(*ast.IdentifierNode)
	if !ok || id.Value != "row" {
		return
	}
	if s, ok := m.Property.(*ast.StringNode); ok {
		for _, c := range r.cols {
			if c == s.Value {
				return
			}
		}
		r.cols = append(r.cols, s.Value)
	}
}
