package location

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dpe-engine/dpe/internal/paths"
)

// Resolve returns the path of rel in location name for reading; it is the
// paths.Guard Locations hook. The rule:
//
//  1. the first healthy root, in order, that has rel (master first), so a
//     file is read from the master while the master is up, and from a
//     replica when the master is down or does not have it (a file written
//     to the replica while the master was away);
//  2. when no healthy root has it (a new file), the first root healthy for
//     writing, which is the master whenever it is up;
//  3. else the first healthy root (the job then fails on the missing
//     file, naming it).
//
// rel is slash-separated and relative; "" names the root itself; ".." is
// refused. Every root is probed through the cache (Options.TTL), so after a
// root fails, the next probe moves reads to the next root. An error
// matches ErrUnknown or ErrNoHealthyRoot (retry later) or is a bad rel.
func (s *Set) Resolve(name, rel string) (string, error) {
	l, rel, err := s.prepare(name, rel)
	if err != nil {
		return "", err
	}
	var readable, writable string
	var failed []string
	for _, r := range l.roots {
		res := r.health(context.Background(), &s.opts, false)
		if res.readErr != nil {
			failed = append(failed, res.readErr.Error())
			continue
		}
		p := join(r.path, rel)
		if _, err := os.Lstat(p); err == nil {
			return p, nil
		}
		if readable == "" {
			readable = p
		}
		if writable == "" && res.writeErr == nil {
			writable = p
		}
	}
	switch {
	case writable != "":
		return writable, nil
	case readable != "":
		return readable, nil
	}
	return "", noHealthy(name, failed)
}

// ResolveWrite returns the path of rel in location name for writing (a
// copy's target, a new directory): the first root healthy for writing,
// which is the master whenever it is up, whether or not the file exists
// there yet. rel is as for Resolve.
func (s *Set) ResolveWrite(name, rel string) (string, error) {
	l, rel, err := s.prepare(name, rel)
	if err != nil {
		return "", err
	}
	var failed []string
	for _, r := range l.roots {
		res := r.health(context.Background(), &s.opts, false)
		if res.writeErr == nil {
			return join(r.path, rel), nil
		}
		failed = append(failed, res.writeErr.Error())
	}
	return "", noHealthy(name, failed)
}

// prepare looks up the location and cleans rel.
func (s *Set) prepare(name, rel string) (*loc, string, error) {
	l, err := s.lookup(name)
	if err != nil {
		return nil, "", err
	}
	rel, err = paths.CleanRel(rel)
	if err != nil {
		return nil, "", fmt.Errorf("location %q: %w", name, err)
	}
	return l, rel, nil
}

// noHealthy is the ErrNoHealthyRoot of location name with each root's
// failure.
func noHealthy(name string, failed []string) error {
	return fmt.Errorf("location %q: %w (%s)", name, ErrNoHealthyRoot, strings.Join(failed, "; "))
}

// join appends the clean slash-separated rel to root.
func join(root, rel string) string {
	if rel == "" {
		return root
	}
	return filepath.Join(root, filepath.FromSlash(rel))
}

// SplitPath splits a loc:NAME/relative/path into the location name and
// the cleaned relative path: it is paths.SplitLocation, the one parser of
// location paths.
func SplitPath(p string) (name, rel string, ok bool, err error) {
	return paths.SplitLocation(p)
}
