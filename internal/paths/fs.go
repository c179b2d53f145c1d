package paths

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// File operations on resolved paths (the results of Resolve). Resolve
// checks a path, but the file system may change before it is used: a
// directory swapped for a link to /etc between the check and os.Open
// would be followed. So a confined guard performs every operation through
// the os.Root of the most specific root holding the path, which resolves
// the path again, beneath that root, in the same system calls that open
// it, and fails rather than leave the root. An unconfined guard uses the
// os functions directly: it has nothing to confine.
//
// The root is opened for each operation, not once for the guard: a
// location's root may be a network share that is unmounted and mounted
// again, and a directory opened before would go on naming the old mount.
//
// Operations that act on the last element itself (Lstat, Remove, Rename,
// Mkdir) take the path as Resolve returned it; those that follow a final
// link (Open, Stat) first resolve the link and check its target, which is
// then opened through the root holding it (a link from one root to
// another, which os.Root alone would refuse, keeps working).
//
// A denied dir under a root is out of os.Root's sight: it follows links
// that stay in the root. Open checks where the file it opened really is
// (verify); the mutating operations (MkdirAll, Remove, Chtimes, Rename,
// CreateTemp) pin the directory they act in as a descriptor, check where
// it is, and act on one name in it (fs_linux.go). Elsewhere than Linux,
// the check of the path string alone guards the denied dirs
// (fs_other.go).

// beneath opens the most specific root holding the resolved path p and
// returns it with p relative to it. The caller closes the root; files
// opened through it stay open.
func (g *Guard) beneath(p string) (*os.Root, string, error) {
	i, _ := g.rootOf(p)
	if i < 0 || !g.within(p) {
		return nil, "", g.check(p, p, "")
	}
	return openAt(g.roots[i], p)
}

// openAt opens root and returns it with p relative to it.
func openAt(root, p string) (*os.Root, string, error) {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return nil, "", fmt.Errorf("%q: %w", p, err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, "", err
	}
	return r, rel, nil
}

// follow resolves the final link of the resolved path p, checks where it
// leads and returns the root holding the target and the target relative
// to it.
func (g *Guard) follow(p string) (*os.Root, string, error) {
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return g.beneath(p)
	}
	vol := filepath.VolumeName(p)
	target, err := walk(vol+string(filepath.Separator), split(p[len(vol):]))
	if err != nil {
		return nil, "", fmt.Errorf("%q: %w", p, err)
	}
	if err := g.check(p, target, "a symbolic link to "); err != nil {
		return nil, "", err
	}
	return g.beneath(target)
}

// Open opens the file at the resolved path p for reading.
func (g *Guard) Open(p string) (*os.File, error) {
	if g.Unconfined() {
		return unconfined(g, p, os.Open)
	}
	r, rel, err := g.follow(p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(rel)
	if err != nil {
		return nil, err
	}
	if err := g.verify(p, f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// verify checks where the open file f really is, where the system tells
// (Linux: /proc/self/fd), against the denied dirs. The root keeps f under
// it, but a denied dir may lie under the same root (dpe up's data
// directory under its working directory), and a link swapped in between
// follow's check and the open could lead there.
func (g *Guard) verify(p string, f *os.File) error {
	if len(g.deny) == 0 {
		return nil
	}
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil || !filepath.IsAbs(real) {
		return nil // no /proc: the check of Resolve and follow stands
	}
	return g.check(p, real, "")
}

// Stat returns the FileInfo of the file at the resolved path p, following
// a final link.
func (g *Guard) Stat(p string) (fs.FileInfo, error) {
	if g.Unconfined() {
		return unconfined(g, p, os.Stat)
	}
	r, rel, err := g.follow(p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Stat(rel)
}

// Lstat returns the FileInfo of the resolved path p itself.
func (g *Guard) Lstat(p string) (fs.FileInfo, error) {
	if g.Unconfined() {
		return unconfined(g, p, os.Lstat)
	}
	r, rel, err := g.beneath(p)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Lstat(rel)
}

// MkdirAll creates the directory p and its missing parents.
func (g *Guard) MkdirAll(p string, perm fs.FileMode) error {
	if g.Unconfined() {
		return g.plain(p, func() error { return os.MkdirAll(p, perm) })
	}
	r, rel, err := g.beneath(p)
	if err != nil {
		return err
	}
	defer r.Close()
	if rel == "." {
		return nil // a root exists
	}
	return g.mkdirAllIn(r, p, rel, perm)
}

// Remove removes the file or empty directory p (a link, not its target).
func (g *Guard) Remove(p string) error {
	if g.Unconfined() {
		return g.plain(p, func() error { return os.Remove(p) })
	}
	r, rel, err := g.beneath(p)
	if err != nil {
		return err
	}
	defer r.Close()
	return g.removeIn(r, p, rel)
}

// Chtimes sets the access and modification times of the file p.
func (g *Guard) Chtimes(p string, atime, mtime time.Time) error {
	if g.Unconfined() {
		return g.plain(p, func() error { return os.Chtimes(p, atime, mtime) })
	}
	r, rel, err := g.beneath(p)
	if err != nil {
		return err
	}
	defer r.Close()
	return g.chtimesIn(r, p, rel, atime, mtime)
}

// Rename renames from to to. Both must be under one root: across roots
// it fails as a rename across file systems does (EXDEV), for the caller
// to copy instead.
func (g *Guard) Rename(from, to string) error {
	if g.Unconfined() {
		return g.plain(from, func() error { return g.plain(to, func() error { return os.Rename(from, to) }) })
	}
	for _, p := range []string{from, to} {
		if i, _ := g.rootOf(p); i < 0 || !g.within(p) {
			return g.check(p, p, "")
		}
	}
	// The most specific root holding both: the same for most renames, the
	// outer one of nested roots.
	best := -1
	for i, root := range g.roots {
		if under(from, root) && under(to, root) && (best < 0 || len(root) > len(g.roots[best])) {
			best = i
		}
	}
	if best < 0 {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EXDEV}
	}
	r, relFrom, err := openAt(g.roots[best], from)
	if err != nil {
		return err
	}
	defer r.Close()
	relTo, err := filepath.Rel(g.roots[best], to)
	if err != nil {
		return err
	}
	return g.renameIn(r, from, to, relFrom, relTo)
}

// CreateTemp creates a new file in the directory dir, named by pattern
// with its last "*" replaced by a random string, opened for reading and
// writing with mode 0600, and returns it with its path.
func (g *Guard) CreateTemp(dir, pattern string) (*os.File, string, error) {
	if g.Unconfined() {
		if err := g.plain(dir, func() error { return nil }); err != nil {
			return nil, "", err
		}
		f, err := os.CreateTemp(dir, pattern)
		if err != nil {
			return nil, "", err
		}
		return f, f.Name(), nil
	}
	r, rel, err := g.beneath(dir)
	if err != nil {
		return nil, "", err
	}
	defer r.Close()
	create, done := g.creatorIn(r, dir, rel)
	defer done()
	prefix, suffix := pattern, ""
	if i := lastStar(pattern); i >= 0 {
		prefix, suffix = pattern[:i], pattern[i+1:]
	}
	for range 100 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		name := prefix + hex.EncodeToString(b[:]) + suffix
		f, err := create(name)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		return f, filepath.Join(dir, name), nil
	}
	return nil, "", fmt.Errorf("create temporary file in %s: %w", dir, fs.ErrExist)
}

func lastStar(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '*' {
			return i
		}
	}
	return -1
}

// plain runs op for a guard without roots, which has only its denied
// dirs to check.
func (g *Guard) plain(p string, op func() error) error {
	if g != nil && !g.within(p) {
		return g.check(p, p, "")
	}
	return op()
}

// unconfined is plain for operations with a result.
func unconfined[T any](g *Guard, p string, op func(string) (T, error)) (T, error) {
	var out T
	err := g.plain(p, func() error {
		var err error
		out, err = op(p)
		return err
	})
	return out, err
}
