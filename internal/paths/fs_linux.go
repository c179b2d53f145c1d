//go:build linux

package paths

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// The mutating operations when the guard has denied dirs. os.Root keeps
// an operation beneath its root, but it follows links that stay in the
// root, and a denied dir may lie under the same root (dpe up's data
// directory under its working directory): a directory swapped for a link
// to it between the check of the path and the operation would be
// followed, and a file job would remove, rename or create files next to
// the core database. So the directory an operation acts in is opened
// first, through the root, and pinned as a file descriptor; where it
// really is comes from /proc/self/fd and is checked against the denied
// dirs; and the operation then acts on one name in that very directory
// (unlinkat, renameat, mkdirat, openat with O_NOFOLLOW), which no later
// swap can redirect. Without denied dirs os.Root alone confines, and the
// operations cost what they always did.

// dirFD is a directory pinned for an operation: opened with O_PATH, so
// that a directory the process may search but not read can be pinned too.
type dirFD struct {
	f    *os.File
	fd   int
	real string // where the directory is, from /proc; "" when unknown
}

// pinDir opens the directory rel through r, which resolves rel beneath
// the root, and learns where the directory really is.
func pinDir(r *os.Root, rel string) (*dirFD, error) {
	f, err := r.OpenFile(rel, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	return pinFile(f), nil
}

// pinFile returns the open directory f pinned.
func pinFile(f *os.File) *dirFD {
	fd := int(f.Fd())
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil || !filepath.IsAbs(real) {
		real = "" // no /proc: the check of the path stands
	}
	return &dirFD{f: f, fd: fd, real: real}
}

// pinParent pins the directory holding rel and returns it with the last
// element of rel.
func pinParent(r *os.Root, rel string) (*dirFD, string, error) {
	d, err := pinDir(r, filepath.Dir(rel))
	if err != nil {
		return nil, "", err
	}
	return d, filepath.Base(rel), nil
}

func (d *dirFD) close() { d.f.Close() }

// checkIn refuses the element name of the pinned directory d (d itself
// for "") unless it is within the guard; p is the path the caller gave.
func (g *Guard) checkIn(p string, d *dirFD, name string) error {
	if d.real == "" {
		return nil
	}
	return g.check(p, filepath.Join(d.real, name), "")
}

// errnoOf returns the system error under the *os.PathError of a failed
// open through a root, for the error of the operation it was part of.
func errnoOf(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// ignoringEINTR retries fn while a signal interrupts it.
func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func (g *Guard) removeIn(r *os.Root, p, rel string) error {
	if len(g.deny) == 0 || rel == "." {
		return r.Remove(rel)
	}
	d, name, err := pinParent(r, rel)
	if err != nil {
		return &os.PathError{Op: "removeat", Path: rel, Err: errnoOf(err)}
	}
	defer d.close()
	if err := g.checkIn(p, d, name); err != nil {
		return err
	}
	// As os.Remove: a file or else an empty directory, the error of the
	// directory attempt unless p is no directory at all.
	e := ignoringEINTR(func() error { return unix.Unlinkat(d.fd, name, 0) })
	if e == nil {
		return nil
	}
	e1 := ignoringEINTR(func() error { return unix.Unlinkat(d.fd, name, unix.AT_REMOVEDIR) })
	if e1 == nil {
		return nil
	}
	if !errors.Is(e1, unix.ENOTDIR) {
		e = e1
	}
	return &os.PathError{Op: "removeat", Path: rel, Err: e}
}

func (g *Guard) chtimesIn(r *os.Root, p, rel string, atime, mtime time.Time) error {
	if len(g.deny) == 0 || rel == "." {
		return r.Chtimes(rel, atime, mtime)
	}
	fail := func(err error) error { return &os.PathError{Op: "chtimesat", Path: rel, Err: err} }
	d, name, err := pinParent(r, rel)
	if err != nil {
		return fail(errnoOf(err))
	}
	defer d.close()
	if d.real == "" {
		return r.Chtimes(rel, atime, mtime) // no /proc to check or act through
	}
	if err := g.checkIn(p, d, name); err != nil {
		return err
	}
	// Chtimes follows a final link, as os.Chtimes does: the file itself is
	// opened (O_PATH: no read permission needed, no device opened), its
	// real place checked, and its times set through its descriptor.
	var fd int
	err = ignoringEINTR(func() error {
		var err error
		fd, err = unix.Openat(d.fd, name, unix.O_PATH|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return fail(err)
	}
	f := pinFile(os.NewFile(uintptr(fd), filepath.Join(d.real, name)))
	defer f.close()
	if err := g.checkIn(p, f, ""); err != nil {
		return err
	}
	ts := []unix.Timespec{timespec(atime), timespec(mtime)}
	if err := ignoringEINTR(func() error {
		return unix.UtimesNanoAt(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(f.fd), ts, 0)
	}); err != nil {
		return fail(err)
	}
	return nil
}

// timespec is t for utimensat; the zero time leaves the time unchanged,
// as with os.Chtimes.
func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

func (g *Guard) renameIn(r *os.Root, from, to, relFrom, relTo string) error {
	if len(g.deny) == 0 || relFrom == "." || relTo == "." {
		return r.Rename(relFrom, relTo)
	}
	fail := func(err error) error { return &os.LinkError{Op: "renameat", Old: relFrom, New: relTo, Err: err} }
	df, nf, err := pinParent(r, relFrom)
	if err != nil {
		return fail(errnoOf(err))
	}
	defer df.close()
	dt, nt, err := pinParent(r, relTo)
	if err != nil {
		return fail(errnoOf(err))
	}
	defer dt.close()
	if err := g.checkIn(from, df, nf); err != nil {
		return err
	}
	if err := g.checkIn(to, dt, nt); err != nil {
		return err
	}
	// As os.Rename: a directory is not replaced, unless by itself.
	var st unix.Stat_t
	if err := unix.Fstatat(dt.fd, nt, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		var ost unix.Stat_t
		if err := unix.Fstatat(df.fd, nf, &ost, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fail(err)
		}
		if relFrom == relTo || st.Dev != ost.Dev || st.Ino != ost.Ino {
			return fail(unix.EEXIST)
		}
	}
	if err := ignoringEINTR(func() error { return unix.Renameat(df.fd, nf, dt.fd, nt) }); err != nil {
		return fail(err)
	}
	return nil
}

// mkdirAllIn creates rel, not ".", element by element, each in the
// directory pinned for it and checked before.
func (g *Guard) mkdirAllIn(r *os.Root, p, rel string, perm os.FileMode) error {
	if len(g.deny) == 0 {
		return r.MkdirAll(rel, perm)
	}
	return g.mkdirAllLinks(r, p, rel, perm, 0)
}

// mkdirAllLinks is mkdirAllIn after links dangling in the root were
// followed.
func (g *Guard) mkdirAllLinks(r *os.Root, p, rel string, perm os.FileMode, links int) error {
	cur, err := pinDir(r, ".")
	if err != nil {
		return &os.PathError{Op: "mkdirat", Path: rel, Err: errnoOf(err)}
	}
	defer func() { cur.close() }()
	elems := split(rel)
	for i := range elems {
		next, err := g.mkdirStep(r, p, cur, elems, i, mode(perm))
		var dl danglingLink
		if errors.As(err, &dl) && links < maxLinks {
			// As os.Root's MkdirAll: the link's target is made, with
			// the rest under it. Lexically: ".." in a target after a
			// link is taken as written, not after the link.
			next := filepath.Join(filepath.Dir(filepath.Join(elems[:i+1]...)), string(dl), filepath.Join(elems[i+1:]...))
			if !filepath.IsAbs(string(dl)) && filepath.IsLocal(next) {
				return g.mkdirAllLinks(r, p, next, perm, links+1)
			}
			err = &os.PathError{Op: "mkdirat", Path: rel, Err: unix.ENOENT}
		}
		if err != nil {
			return err
		}
		cur.close()
		cur = next
	}
	return g.checkIn(p, cur, "")
}

// danglingLink is the target of a link in the root to nothing, which
// MkdirAll makes.
type danglingLink string

func (danglingLink) Error() string { return "dangling link" }

// mode is perm for mkdirat, with the setuid, setgid and sticky bits.
func mode(perm os.FileMode) uint32 {
	m := uint32(perm.Perm())
	if perm&os.ModeSetuid != 0 {
		m |= unix.S_ISUID
	}
	if perm&os.ModeSetgid != 0 {
		m |= unix.S_ISGID
	}
	if perm&os.ModeSticky != 0 {
		m |= unix.S_ISVTX
	}
	return m
}

// mkdirStep opens, creating it if missing, the element i of elems in the
// pinned directory cur.
func (g *Guard) mkdirStep(r *os.Root, p string, cur *dirFD, elems []string, i int, perm uint32) (*dirFD, error) {
	last := i == len(elems)-1
	e, prefix := elems[i], filepath.Join(elems[:i+1]...)
	for try := 0; ; try++ {
		var fd int
		err := ignoringEINTR(func() error {
			var err error
			fd, err = unix.Openat(cur.fd, e, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			return err
		})
		switch {
		case err == nil:
			return pinFile(os.NewFile(uintptr(fd), prefix)), nil
		case errors.Is(err, unix.ENOENT) && try == 0:
			if err := g.checkIn(p, cur, e); err != nil {
				return nil, err
			}
			// EEXIST: made meanwhile by someone else; open it again.
			err := ignoringEINTR(func() error { return unix.Mkdirat(cur.fd, e, perm) })
			if err != nil && !errors.Is(err, unix.EEXIST) {
				return nil, &os.PathError{Op: "mkdirat", Path: prefix, Err: err}
			}
			continue
		case errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP):
			var st unix.Stat_t
			if unix.Fstatat(cur.fd, e, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
				// A link, followed as os.MkdirAll does, through the root:
				// where it leads is checked before anything is made in it.
				d, err := pinDir(r, prefix)
				if errors.Is(err, unix.ENOENT) && last {
					// As os.Root's: a final link is not made a directory.
					return nil, &os.PathError{Op: "mkdirat", Path: prefix, Err: unix.EEXIST}
				}
				if errors.Is(err, unix.ENOENT) {
					if target, err := readlinkat(cur.fd, e); err == nil {
						return nil, danglingLink(target)
					}
				}
				if err != nil {
					return nil, &os.PathError{Op: "mkdirat", Path: filepath.Join(elems...), Err: errnoOf(err)}
				}
				return d, nil
			}
			if last {
				return nil, &os.PathError{Op: "mkdirat", Path: prefix, Err: unix.EEXIST}
			}
		}
		return nil, &os.PathError{Op: "openat", Path: prefix, Err: err}
	}
}

// creatorIn returns create, which makes the new file name (O_EXCL) in
// the directory rel for CreateTemp, and done, to call after the last.
func (g *Guard) creatorIn(r *os.Root, dir, rel string) (create func(name string) (*os.File, error), done func()) {
	if len(g.deny) == 0 {
		return func(name string) (*os.File, error) {
			return r.OpenFile(filepath.Join(rel, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		}, func() {}
	}
	// The directory is pinned at the first name, for the error to name
	// the file as os.Root's does.
	var d *dirFD
	create = func(name string) (*os.File, error) {
		fail := func(err error) error { return &os.PathError{Op: "openat", Path: filepath.Join(rel, name), Err: err} }
		if d == nil {
			var err error
			if d, err = pinDir(r, rel); err != nil {
				return nil, fail(errnoOf(err))
			}
			if err := g.checkIn(dir, d, ""); err != nil {
				return nil, err
			}
		}
		if err := g.checkIn(dir, d, name); err != nil {
			return nil, err
		}
		var fd int
		err := ignoringEINTR(func() error {
			var err error
			fd, err = unix.Openat(d.fd, name, unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
			return err
		})
		if err != nil {
			return nil, fail(err)
		}
		return os.NewFile(uintptr(fd), filepath.Join(dir, name)), nil
	}
	done = func() {
		if d != nil {
			d.close()
		}
	}
	return create, done
}

// readlinkat returns the target of the link name in the directory fd.
func readlinkat(fd int, name string) (string, error) {
	for n := 256; ; n *= 2 {
		b := make([]byte, n)
		m, err := unix.Readlinkat(fd, name, b)
		if err != nil {
			return "", err
		}
		if m < n {
			return string(b[:m]), nil
		}
	}
}
