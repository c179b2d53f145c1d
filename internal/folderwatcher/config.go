package folderwatcher

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// Defaults of Config.
const (
	DefaultPoll          = 2 * time.Second
	DefaultStableFor     = 5 * time.Second
	DefaultFullPassEvery = 10
)

// Events a watcher can start instances for (keys of Config.On).
const (
	EventCreated = "created"
	EventUpdated = "updated"
	EventDeleted = "deleted"
)

// First-start policies (Config.FirstStart), applied by the server when it
// has no mirror yet for the watcher.
const (
	FirstStartFire     = "fire"     // files already waiting count as created
	FirstStartBaseline = "baseline" // files already waiting are remembered, nothing starts
)

// Config is one entry of folder_watchers in the config file (DESIGN §9).
//
// # Which files count
//
// Include and Exclude are path.Match globs. A pattern without '/' matches
// a file's base name at any depth ("*.wav"); a pattern with '/' matches
// the slash-separated path relative to Path ("news/*.wav" matches
// news/a.wav but not news/x/a.wav: '*' never crosses '/', and "**" is
// refused rather than silently read as '*'). A file counts when it matches
// some Include pattern (no Include: every file) and no Exclude pattern.
// Exclude patterns are also tried on directories: a matching directory is
// not descended at all (exclude: [".snapshot", "tmp"] keeps a NAS's
// snapshot tree out of every scan). Only regular files (and symbolic links
// to them) count; symbolic links to directories are not followed.
//
// # When a file is ready
//
// A file that is present but not ready is reported as unstable: it counts
// as present (a full pass never reports it deleted) but starts nothing. One
// rule decides readiness:
//
//   - stable_for (the default, 5s): size and modification time (ns) have
//     not changed for that long, measured by the watcher's clock from the
//     first poll that saw the current size and mtime. A watcher that starts
//     or takes over waits stable_for again for every file; that delays
//     nothing that the server's mirror already knows, since an unchanged
//     file starts nothing.
//   - min_age: the file's mtime is at least that old. It needs no waiting
//     after a takeover but trusts the file server's clock; stable_for and
//     min_age together are refused: pick one.
//   - done_marker (a suffix such as ".done"): the file counts once
//     FILE+suffix exists next to it. Marker files are never events
//     themselves, whatever Include says. With done_marker alone the marker
//     decides; given stable_for or min_age as well, both must hold.
type Config struct {
	Name    string   `yaml:"name"`
	Path    string   `yaml:"path"`
	Include []string `yaml:"include"`
	Exclude []string `yaml:"exclude"`
	// Recursive watches sub-directories too; otherwise only files directly
	// in Path count.
	Recursive bool `yaml:"recursive"`
	// Poll is the time between scans (default 2s). OS notifications, where
	// the file system has them, only bring a scan forward.
	Poll       time.Duration `yaml:"poll"`
	StableFor  time.Duration `yaml:"stable_for"`
	DoneMarker string        `yaml:"done_marker"`
	MinAge     time.Duration `yaml:"min_age"`
	// On maps events (created, updated, deleted) to what they start. Args
	// may hold ${{ }} expressions; the server evaluates them with the
	// file's data as `event` (path, rel, rel_dir, name, dir, size, mtime,
	// event). The watcher sends them as written.
	On map[string]Action `yaml:"on"`
	// FirstStart is fire (default: files already waiting are processed)
	// or baseline (they are remembered, nothing starts).
	FirstStart string `yaml:"first_start"`
	// DryRun records what would start without starting anything.
	DryRun bool `yaml:"dry_run"`
	// FullPassEvery is the number of polls between full passes (default
	// 10). A full pass reports every file, so the server finds deletions
	// it missed (say, while no watcher ran).
	FullPassEvery int `yaml:"full_pass_every"`
}

// Action is what one event starts: an instance of Template with Args.
type Action struct {
	Template string         `yaml:"template"`
	Args     map[string]any `yaml:"args"`
	Priority int            `yaml:"priority"`
}

// ConfigError names the watcher and the field at fault, e.g.
// "folder_watchers[inbox].path: /x: no such directory". It matches
// model.ErrInvalid.
type ConfigError struct {
	Watcher string // the watcher's name ("" when it has none)
	Field   string // e.g. "path", "include[1]", "on.created.template"
	Reason  string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("folder_watchers[%s].%s: %s", e.Watcher, e.Field, e.Reason)
}

// Is makes errors.Is(err, model.ErrInvalid) true.
func (e *ConfigError) Is(target error) bool { return target == model.ErrInvalid }

var (
	// nameRe is the form of watcher names: they appear in URLs, lease
	// names and instance names.
	nameRe = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
	// templateRe is the form of template names (DESIGN §9).
	templateRe = regexp.MustCompile(`^[a-z0-9._-]{1,128}$`)
)

// Validate checks c as written (before defaults) and returns every problem
// found, each a *ConfigError, joined. Whether Path exists is not its
// business: a configuration file is shared by the roles of a plant, and
// only the host that runs the watcher sees its folder (CheckPath, which
// New calls).
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Watcher: c.Name, Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if !nameRe.MatchString(c.Name) {
		if c.Name == "" {
			bad("name", "missing")
		} else {
			bad("name", "%q: want 1 to 128 of [A-Za-z0-9._-]", c.Name)
		}
	}
	if c.Path == "" {
		bad("path", "missing")
	}
	for field, pats := range map[string][]string{"include": c.Include, "exclude": c.Exclude} {
		for i, p := range pats {
			if err := checkGlob(p); err != nil {
				bad(fmt.Sprintf("%s[%d]", field, i), "%q: %v", p, err)
			}
		}
	}
	for field, d := range map[string]time.Duration{"poll": c.Poll, "stable_for": c.StableFor, "min_age": c.MinAge} {
		if d < 0 {
			bad(field, "negative duration %s", d)
		}
	}
	if c.StableFor > 0 && c.MinAge > 0 {
		bad("min_age", "set together with stable_for: pick one rule (stable_for trusts this watcher's clock, min_age the file server's)")
	}
	if m := c.DoneMarker; m != "" && (strings.ContainsAny(m, `/\`) || m == "." || m == "..") {
		bad("done_marker", "%q: want a file name suffix such as \".done\"", m)
	}
	if c.FullPassEvery < 0 {
		bad("full_pass_every", "negative count %d", c.FullPassEvery)
	}
	switch c.FirstStart {
	case "", FirstStartFire, FirstStartBaseline:
	default:
		bad("first_start", "%q: want fire or baseline", c.FirstStart)
	}
	if len(c.On) == 0 {
		bad("on", "no event: give at least one of created, updated, deleted")
	}
	events := make([]string, 0, len(c.On))
	for ev := range c.On {
		events = append(events, ev)
	}
	slices.Sort(events) // stable error order
	for _, ev := range events {
		a := c.On[ev]
		switch ev {
		case EventCreated, EventUpdated, EventDeleted:
		default:
			bad("on."+ev, "unknown event: want created, updated or deleted")
			continue
		}
		switch {
		case a.Template == "":
			bad("on."+ev+".template", "missing")
		case !templateRe.MatchString(a.Template):
			bad("on."+ev+".template", "%q is not a template name: want 1 to 128 of [a-z0-9._-]", a.Template)
		}
		if a.Priority < 0 || a.Priority > model.MaxPriority {
			bad("on."+ev+".priority", "must be between 0 and %d, got %d", model.MaxPriority, a.Priority)
		}
	}
	sortErrors(errs)
	return errors.Join(errs...)
}

// ValidateAll validates every watcher of a config file and refuses two
// with one name.
func ValidateAll(cs []Config) error {
	var errs []error
	seen := make(map[string]bool, len(cs))
	for i := range cs {
		c := &cs[i]
		if err := c.Validate(); err != nil {
			errs = append(errs, err)
		}
		if c.Name != "" && seen[c.Name] {
			errs = append(errs, &ConfigError{Watcher: c.Name, Field: "name", Reason: "used by another folder watcher"})
		}
		seen[c.Name] = true
	}
	return errors.Join(errs...)
}

// sortErrors orders problems by field so that a config gives the same
// message every time (map iteration above is random).
func sortErrors(errs []error) {
	slices.SortStableFunc(errs, func(a, b error) int {
		return strings.Compare(a.(*ConfigError).Field, b.(*ConfigError).Field)
	})
}

// checkGlob refuses patterns path.Match cannot use or that could never
// match a relative path.
func checkGlob(p string) error {
	switch {
	case p == "":
		return errors.New("empty pattern")
	case strings.HasPrefix(p, "/"):
		return errors.New("must be relative to the watched folder")
	case strings.HasSuffix(p, "/"):
		return errors.New("must not end with '/'")
	case strings.Contains(p, "**"):
		return errors.New("** is not supported: a pattern without '/' already matches the base name at any depth")
	}
	if _, err := path.Match(p, ""); err != nil {
		return fmt.Errorf("bad pattern: %w", err)
	}
	return nil
}

// CheckPath refuses a Path that is not an existing directory on this host:
// a watcher is not started on a folder that is not there (one that
// disappears later is reported and waited for).
func (c *Config) CheckPath() error {
	if c.Path == "" {
		return nil // Validate's finding
	}
	if reason := dirProblem(c.Path); reason != "" {
		return &ConfigError{Watcher: c.Name, Field: "path", Reason: fmt.Sprintf("%s: %s", c.Path, reason)}
	}
	return nil
}

// dirProblem says why p is not a usable directory ("" when it is).
func dirProblem(p string) string {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "no such directory"
	case errors.Is(err, fs.ErrPermission):
		return "permission denied"
	case err != nil:
		return err.Error()
	case !fi.IsDir():
		return "not a directory"
	}
	return ""
}

// withDefaults returns c with the defaults filled in and Path made
// absolute and clean. c must be valid.
func (c Config) withDefaults() (Config, error) {
	abs, err := filepath.Abs(c.Path)
	if err != nil {
		return c, fmt.Errorf("folder_watchers[%s].path: %w", c.Name, err)
	}
	c.Path = abs
	if c.Poll == 0 {
		c.Poll = DefaultPoll
	}
	if c.StableFor == 0 && c.MinAge == 0 && c.DoneMarker == "" {
		c.StableFor = DefaultStableFor
	}
	if c.FullPassEvery == 0 {
		c.FullPassEvery = DefaultFullPassEvery
	}
	if c.FirstStart == "" {
		c.FirstStart = FirstStartFire
	}
	return c, nil
}

// actions converts On to the wire form sent with every page.
func (c *Config) actions() map[string]model.EventAction {
	on := make(map[string]model.EventAction, len(c.On))
	for ev, a := range c.On {
		on[ev] = model.EventAction{Template: a.Template, Args: a.Args, Priority: a.Priority}
	}
	return on
}

// matcher decides which files and directories a scan looks at.
type matcher struct {
	include, exclude []glob
}

// glob is one pattern and whether it matches the relative path (it holds
// a '/') or the base name.
type glob struct {
	pattern string
	full    bool
}

func newMatcher(include, exclude []string) matcher {
	conv := func(ps []string) []glob {
		gs := make([]glob, len(ps))
		for i, p := range ps {
			gs[i] = glob{pattern: p, full: strings.Contains(p, "/")}
		}
		return gs
	}
	return matcher{include: conv(include), exclude: conv(exclude)}
}

// matchAny reports whether some pattern matches rel (slash-separated) or
// its base name. Patterns were checked by Validate, so Match cannot fail.
func matchAny(gs []glob, rel, name string) bool {
	for _, g := range gs {
		s := name
		if g.full {
			s = rel
		}
		if ok, _ := path.Match(g.pattern, s); ok {
			return true
		}
	}
	return false
}

// file reports whether the file at rel (base name name) counts.
func (m matcher) file(rel, name string) bool {
	if len(m.include) > 0 && !matchAny(m.include, rel, name) {
		return false
	}
	return !matchAny(m.exclude, rel, name)
}

// skipDir reports whether the directory at rel is excluded with all it
// holds.
func (m matcher) skipDir(rel, name string) bool {
	return matchAny(m.exclude, rel, name)
}
