// Package location resolves named, redundant storage locations (DESIGN §6,
// the PAR-file idea): each location is an ordered list of roots, a master
// first and then its replicas (a local disk, a mount of a distributed file
// system, ...). Jobs name files as loc:NAME/relative/path; a Set turns that
// into a path under the first healthy root and fails over to the next root
// when one goes away, and util.sync copies the master to the replicas.
//
// The health of a root (it exists, is a directory, can be read and, for
// writes, written) is probed on demand and cached for a short TTL, so a
// root that disappears mid-run is left at the next probe, and one that
// comes back is used again at the probe after that.
package location

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/model"
)

// Defaults of Options.
const (
	// DefaultTTL is how long a probe result is trusted: short enough that
	// a failed root is left within seconds, long enough that a busy
	// processor does not probe on every path.
	DefaultTTL = 2 * time.Second
	// DefaultTimeout bounds one probe: a hung network mount counts as
	// unhealthy after it instead of hanging every job that names it.
	DefaultTimeout = 3 * time.Second
)

// Options tune a Set. The zero value gives the defaults.
type Options struct {
	// TTL is how long a root's probe result is reused (DefaultTTL if 0).
	TTL time.Duration
	// Timeout bounds one probe (DefaultTimeout if 0).
	Timeout time.Duration
	// Clock decides when a cached result is stale; nil is the system
	// clock. Tests pass a clock.Fake and Advance it past the TTL.
	Clock clock.Clock
	// Probe checks one root; nil is the file system probe (ProbeDir).
	// Tests inject one to simulate a failed or hung root.
	Probe ProbeFunc
}

// Set is the locations of one configuration. It is safe for use by many
// goroutines.
type Set struct {
	locs  map[string]*loc
	names []string // sorted
	opts  Options
}

// loc is one location: its roots in order, the master first.
type loc struct {
	name  string
	roots []*root
}

// New builds a Set from the locations section of the configuration: name
// → roots, master first. Names are lower-case letters, digits, '.', '_'
// and '-'; each location needs at least one root; roots must be absolute,
// and no root of a location may equal, contain or lie inside another of
// its roots (a sync would then copy the master into itself). Roots are
// cleaned but not required to exist: a replica that is down at start is
// just unhealthy. Errors match model.ErrInvalid and name the location.
func New(cfg map[string][]string, opts Options) (*Set, error) {
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	if opts.Probe == nil {
		opts.Probe = ProbeDir
	}
	s := &Set{locs: make(map[string]*loc, len(cfg)), opts: opts}
	for name, roots := range cfg {
		l, err := newLoc(name, roots)
		if err != nil {
			return nil, err
		}
		s.locs[name] = l
		s.names = append(s.names, name)
	}
	sort.Strings(s.names)
	return s, nil
}

// newLoc validates one location.
func newLoc(name string, roots []string) (*loc, error) {
	field := "locations." + name
	if err := ValidName(name); err != nil {
		return nil, model.Invalid(field, "%v", err)
	}
	if len(roots) == 0 {
		return nil, model.Invalid(field, "give at least one root (the master first)")
	}
	l := &loc{name: name}
	for i, r := range roots {
		if !filepath.IsAbs(r) {
			return nil, model.Invalid(fmt.Sprintf("%s[%d]", field, i), "root %q must be an absolute path", r)
		}
		r = filepath.Clean(r)
		for _, prev := range l.roots {
			if overlap(prev.path, r) {
				return nil, model.Invalid(fmt.Sprintf("%s[%d]", field, i), "root %q overlaps root %q: roots of one location must be separate trees", r, prev.path)
			}
		}
		l.roots = append(l.roots, &root{path: r, index: i})
	}
	return l, nil
}

// ValidName checks a location name: one or more of [a-z0-9._-].
func ValidName(name string) error {
	if name == "" {
		return fmt.Errorf("empty location name")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("bad location name %q: use lower-case letters, digits, '.', '_' or '-'", name)
		}
	}
	return nil
}

// overlap reports whether the clean absolute paths a and b are the same
// or one lies under the other.
func overlap(a, b string) bool {
	under := func(p, dir string) bool {
		return strings.HasPrefix(p, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
	}
	return a == b || under(a, b) || under(b, a)
}

// Names returns the location names, sorted.
func (s *Set) Names() []string { return append([]string(nil), s.names...) }

// Roots returns the roots of location name in order, the master first,
// or an error matching ErrUnknown.
func (s *Set) Roots(name string) ([]string, error) {
	l, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(l.roots))
	for i, r := range l.roots {
		out[i] = r.path
	}
	return out, nil
}

// AllRoots returns the roots of every location, by location name and then
// in order, without duplicates: the directories a processor's path guard
// must allow (DESIGN §3).
func (s *Set) AllRoots() []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range s.names {
		for _, r := range s.locs[n].roots {
			if !seen[r.path] {
				seen[r.path] = true
				out = append(out, r.path)
			}
		}
	}
	return out
}

// lookup finds a location by name.
func (s *Set) lookup(name string) (*loc, error) {
	if s == nil {
		return nil, fmt.Errorf("location %q: %w (no locations configured)", name, ErrUnknown)
	}
	l, ok := s.locs[name]
	if !ok {
		return nil, fmt.Errorf("location %q: %w (configured: %s)", name, ErrUnknown, strings.Join(s.names, ", "))
	}
	return l, nil
}
