// Package paths confines the file paths that job params name to the
// processor's allowed roots (DESIGN §3): a path is accepted only when it
// stays under one of them after ".." and symbolic links are resolved, so a
// job can neither climb out with "../" nor follow a link planted inside a
// root to a file outside it.
package paths

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Sentinel errors of Resolve.
var (
	// ErrOutsideRoots: the path, once resolved, is under none of the
	// allowed roots.
	ErrOutsideRoots = errors.New("path is outside the allowed roots")
	// ErrRelative: a relative path was given to a confined guard, which
	// has no base to resolve it against.
	ErrRelative = errors.New("path is relative")
	// ErrNoLocations: a loc:NAME/... path was given to a guard without a
	// Locations resolver.
	ErrNoLocations = errors.New("loc: paths need a locations config")
)

// LocationPrefix starts a path that names a file in a location
// (loc:NAME/relative/path, DESIGN §6).
const LocationPrefix = "loc:"

// Guard confines paths to a set of roots. A Guard with no roots, and a nil
// *Guard, is unconfined: it accepts any path. A Guard is safe for use by
// many goroutines once set up.
type Guard struct {
	roots []string // absolute, symlink-free, cleaned, without duplicates
	deny  []string // resolved like roots: refused unless under a more specific root

	// Locations, when set, turns loc:NAME/rel into a path: the location's
	// first healthy root joined with rel, which Resolve then confines like
	// any other path. rel is slash-separated, local (no "..", not absolute)
	// and may be empty for the location's root. Nil refuses loc: paths with
	// ErrNoLocations. Set it before the first Resolve.
	Locations func(name, rel string) (string, error)
}

// NewGuard returns a Guard confining paths to roots. Each root is made
// absolute and its symbolic links are evaluated; a root that does not exist
// or is not a directory is an error naming it. No roots gives an unconfined
// Guard.
func NewGuard(roots []string) (*Guard, error) {
	g := &Guard{}
	for _, r := range roots {
		if r == "" {
			return nil, errors.New("allowed root: empty path")
		}
		abs, err := filepath.Abs(r)
		if err != nil {
			return nil, fmt.Errorf("allowed root %q: %w", r, err)
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return nil, fmt.Errorf("allowed root %q: %w", r, err)
		}
		fi, err := os.Stat(real)
		if err != nil {
			return nil, fmt.Errorf("allowed root %q: %w", r, err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("allowed root %q: not a directory", r)
		}
		if !g.isRoot(real) {
			g.roots = append(g.roots, real)
		}
	}
	return g, nil
}

// Deny refuses the paths under dirs (the core database's directory, say)
// even where a root holds them, unless a root under such a dir holds them:
// the most specific of the roots and denied dirs that holds a path
// decides. Each dir is resolved like a root; a dir that does not exist is
// an error. Call it before the first Resolve.
func (g *Guard) Deny(dirs ...string) error {
	for _, d := range dirs {
		abs, err := filepath.Abs(d)
		if err != nil {
			return fmt.Errorf("denied directory %q: %w", d, err)
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return fmt.Errorf("denied directory %q: %w", d, err)
		}
		g.deny = append(g.deny, real)
	}
	return nil
}

// Unconfined reports whether the guard accepts any path (no roots): the
// processor warns about it at start.
func (g *Guard) Unconfined() bool { return g == nil || len(g.roots) == 0 }

// Roots returns the allowed roots, resolved, in the order given.
func (g *Guard) Roots() []string {
	if g == nil {
		return nil
	}
	return append([]string(nil), g.roots...)
}

// IsRoot reports whether the resolved path p is one of the roots, which a
// handler may refuse to delete.
func (g *Guard) IsRoot(p string) bool {
	if g == nil {
		return false
	}
	return g.isRoot(p)
}

func (g *Guard) isRoot(p string) bool {
	for _, r := range g.roots {
		if r == p {
			return true
		}
	}
	return false
}

// within reports whether the resolved path p is a root or under one, and
// under no denied dir more specific than that root.
func (g *Guard) within(p string) bool {
	if g == nil {
		return true
	}
	_, depth := g.rootOf(p)
	if depth < 0 && !g.Unconfined() {
		return false
	}
	for _, d := range g.deny {
		if under(p, d) && len(d) >= depth {
			return false
		}
	}
	return true
}

// rootOf returns the index of the most specific root holding the resolved
// path p, and its length; -1, -1 when none does.
func (g *Guard) rootOf(p string) (int, int) {
	best, depth := -1, -1
	if g == nil {
		return best, depth
	}
	for i, r := range g.roots {
		if under(p, r) && len(r) > depth {
			best, depth = i, len(r)
		}
	}
	return best, depth
}

// under reports whether the clean absolute path p is dir or beneath it.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}

// rootList formats the roots for error messages.
func (g *Guard) rootList() string { return strings.Join(g.roots, ", ") }
