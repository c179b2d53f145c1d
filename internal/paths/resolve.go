package paths

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// maxLinks bounds the symbolic links followed in one path, as the kernel
// does (ELOOP), so a link cycle cannot hang Resolve.
const maxLinks = 255

// Resolve checks a path from job params and returns it absolute and clean,
// with every symbolic link in its directory part evaluated. The last
// element is kept as named (a handler deleting or moving a link acts on the
// link), but when it is a link, its target must be under a root as well.
// Elements that do not exist yet (a copy's target) are fine: links are
// evaluated along the longest existing prefix and the rest is taken as
// written.
//
// A confined guard refuses relative paths (ErrRelative) and paths that end
// up under none of its roots (ErrOutsideRoots); an unconfined one resolves
// relative paths against the working directory. loc:NAME/rel paths go
// through Locations (ErrNoLocations when it is nil).
func (g *Guard) Resolve(p string) (string, error) {
	switch {
	case p == "":
		return "", errors.New("empty path")
	case strings.IndexByte(p, 0) >= 0:
		return "", fmt.Errorf("path %q contains a NUL byte", p)
	case strings.HasPrefix(p, LocationPrefix):
		return g.resolveLocation(p)
	case !filepath.IsAbs(p):
		if !g.Unconfined() {
			return "", fmt.Errorf("%q: %w: give an absolute path under %s", p, ErrRelative, g.rootList())
		}
		wd, err := os.Getwd()
		if err != nil {
			return "", fmt.Errorf("%q: relative path: %w", p, err)
		}
		// Not filepath.Join: it would clean "link/.." lexically, which is
		// not what the kernel does when link is a symbolic link.
		return g.confine(p, wd+string(filepath.Separator)+p)
	}
	return g.confine(p, p)
}

// resolveLocation turns loc:NAME/rel into a path through g.Locations and
// confines the result.
func (g *Guard) resolveLocation(p string) (string, error) {
	if g == nil || g.Locations == nil {
		return "", fmt.Errorf("%q: %w", p, ErrNoLocations)
	}
	name, rel, _, err := SplitLocation(p)
	if err != nil {
		return "", err
	}
	abs, err := g.Locations(name, rel)
	if err != nil {
		return "", fmt.Errorf("%q: %w", p, err)
	}
	if !filepath.IsAbs(abs) {
		return "", fmt.Errorf("%q: location %q gave the relative path %q", p, name, abs)
	}
	return g.confine(p, abs)
}

// confine resolves the absolute path abs (named orig by the job) and checks
// it against the roots.
func (g *Guard) confine(orig, abs string) (string, error) {
	vol := filepath.VolumeName(abs)
	base := vol + string(filepath.Separator)
	elems := split(abs[len(vol):])
	n := len(elems)
	if n == 0 || elems[n-1] == "." || elems[n-1] == ".." {
		// The last element is no name of its own: resolve it all.
		full, err := walk(base, elems)
		if err != nil {
			return "", fmt.Errorf("%q: %w", orig, err)
		}
		return full, g.check(orig, full, "")
	}
	dir, err := walk(base, elems[:n-1])
	if err != nil {
		return "", fmt.Errorf("%q: %w", orig, err)
	}
	full := filepath.Join(dir, elems[n-1])
	if err := g.check(orig, full, ""); err != nil {
		return "", err
	}
	if fi, err := os.Lstat(full); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		target, err := walk(base, elems)
		if err != nil {
			return "", fmt.Errorf("%q: %w", orig, err)
		}
		if err := g.check(orig, target, "a symbolic link to "); err != nil {
			return "", err
		}
	}
	return full, nil
}

// check returns ErrOutsideRoots, wrapped with the details, unless the
// resolved path is under a root.
func (g *Guard) check(orig, resolved, what string) error {
	if g.within(resolved) {
		return nil
	}
	for _, d := range g.deny {
		if under(resolved, d) {
			return fmt.Errorf("%q is %s%q: %w: it is under %s, where file jobs may not go", orig, what, resolved, ErrOutsideRoots, d)
		}
	}
	return fmt.Errorf("%q is %s%q: %w (%s)", orig, what, resolved, ErrOutsideRoots, g.rootList())
}

// walk follows elems from the directory base the way the kernel would,
// evaluating symbolic links, and returns the resulting absolute path.
// Elements that do not exist are taken as written, and a ".." after one
// goes back lexically, which matches what the kernel will do once the
// missing directory is created.
func walk(base string, elems []string) (string, error) {
	dest := base
	links := 0
	for len(elems) > 0 {
		e := elems[0]
		elems = elems[1:]
		switch e {
		case ".":
			continue
		case "..":
			dest = filepath.Dir(dest)
			continue
		}
		next := filepath.Join(dest, e)
		fi, err := os.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			dest = next
			continue
		case err != nil:
			return "", err
		case fi.Mode()&fs.ModeSymlink == 0:
			dest = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("too many symbolic links at %q", next)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			vol := filepath.VolumeName(target)
			dest = vol + string(filepath.Separator)
			target = target[len(vol):]
		}
		elems = append(split(target), elems...)
	}
	return dest, nil
}

// split returns the non-empty elements of a path.
func split(p string) []string {
	return strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == filepath.Separator })
}
