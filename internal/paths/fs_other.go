//go:build !linux

package paths

import (
	"os"
	"path/filepath"
	"time"
)

// Without Linux's /proc/self/fd the guard cannot tell where a directory
// opened through a root really is, so the mutating operations leave the
// path to os.Root alone: it keeps them beneath the root, but a directory
// swapped for a link to a denied dir under that same root between the
// check and the operation is followed (see fs_linux.go for the pinned
// versions). Only the check of the path string guards the denied dirs.

func (g *Guard) mkdirAllIn(r *os.Root, _, rel string, perm os.FileMode) error {
	return r.MkdirAll(rel, perm)
}

func (g *Guard) removeIn(r *os.Root, _, rel string) error { return r.Remove(rel) }

func (g *Guard) chtimesIn(r *os.Root, _, rel string, atime, mtime time.Time) error {
	return r.Chtimes(rel, atime, mtime)
}

func (g *Guard) renameIn(r *os.Root, _, _, relFrom, relTo string) error {
	return r.Rename(relFrom, relTo)
}

func (g *Guard) creatorIn(r *os.Root, _, rel string) (create func(name string) (*os.File, error), done func()) {
	return func(name string) (*os.File, error) {
		return r.OpenFile(filepath.Join(rel, name), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	}, func() {}
}
