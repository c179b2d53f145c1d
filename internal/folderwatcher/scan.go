package folderwatcher

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// file is one file a scan found.
type file struct {
	key   string // slash-separated path relative to the root
	size  int64
	mtime int64 // UnixNano

	// Filled by the poll that uses the scan.
	e     *entry // the watcher's memory of the file
	ready bool   // it counts now (see rule)
}

// scan is the result of one walk of a watched tree. Its slices and map are
// reused from poll to poll, so a steady tree costs few allocations.
type scan struct {
	files []file
	// markers holds the keys of files whose done marker exists.
	markers map[string]struct{}
	// blind holds the keys of directories (or files) that could not be
	// read: nothing at or under them may be reported gone.
	blind []string
	// dirs holds the absolute paths of the directories walked (for OS
	// notifications).
	dirs []string
	// rootErr is set when the root is missing or unreadable: nothing of
	// the scan may be sent.
	rootErr error
}

// complete reports whether the scan saw the whole tree: only then may a
// full pass be marked Complete.
func (s *scan) complete() bool { return s.rootErr == nil && len(s.blind) == 0 }

// blinded reports whether key is at or under an unreadable entry.
func (s *scan) blinded(key string) bool {
	for _, b := range s.blind {
		if key == b || b == "." || (strings.HasPrefix(key, b) && len(key) > len(b) && key[len(b)] == '/') {
			return true
		}
	}
	return false
}

// errRootNotDir is the root error when the watched path is a file.
var errRootNotDir = errors.New("not a directory")

// scanner walks one watched folder.
type scanner struct {
	root      string // absolute, clean
	recursive bool
	match     matcher
	marker    string // done-marker suffix, "" for none
	log       *slog.Logger
	// fault, in tests, makes the entry at a relative path unreadable: a
	// directory as if os.ReadDir failed, a file as if lstat failed.
	fault func(rel string) error

	cur scan
	// warned holds the unreadable entries already logged, so a directory
	// that stays unreadable is logged once, not every poll.
	warned, warnedNext map[string]bool
}

// unreadable records that nothing at or under rel can be seen this poll.
func (sc *scanner) unreadable(s *scan, p, rel string, err error) {
	s.blind = append(s.blind, rel)
	if sc.warnedNext == nil {
		sc.warnedNext = make(map[string]bool)
	}
	sc.warnedNext[rel] = true
	if !sc.warned[rel] {
		sc.log.Warn("folder watcher cannot read an entry; nothing at or under it is reported gone until it can", "path", p, "err", err)
	}
}

// endWarnings logs the entries readable again after a complete walk.
func (sc *scanner) endWarnings() {
	for rel := range sc.warned {
		if !sc.warnedNext[rel] {
			sc.log.Info("folder watcher can read the entry again", "rel", rel)
		}
	}
	sc.warned, sc.warnedNext = sc.warnedNext, sc.warned
	clear(sc.warnedNext)
}

// run walks the tree and returns the scan (valid until the next run). A
// cancelled ctx ends the walk early with ctx's error.
func (sc *scanner) run(ctx context.Context) (*scan, error) {
	s := &sc.cur
	s.files, s.blind, s.dirs, s.rootErr = s.files[:0], s.blind[:0], s.dirs[:0], nil
	if s.markers == nil {
		s.markers = make(map[string]struct{})
	}
	clear(s.markers)

	if err := sc.rootCheck(); err != nil {
		s.rootErr = err
		return s, nil
	}
	// The trailing separator makes WalkDir's lstat of the root follow a
	// symbolic link (/data/inbox -> /mnt/nas/inbox is common), and every
	// path it hands back then starts with prefix.
	prefix := sc.root
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	n := 0
	err := filepath.WalkDir(prefix, func(p string, d fs.DirEntry, err error) error {
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rel := "."
		if len(p) > len(prefix) {
			rel = filepath.ToSlash(p[len(prefix):])
		}
		if err != nil {
			if rel == "." {
				s.rootErr = err
				return filepath.SkipAll
			}
			// The directory's listing failed (the second call WalkDir
			// makes for it): what it lists is walked, nothing under it
			// can be said to be gone.
			sc.unreadable(s, p, rel, err)
			return nil
		}
		if d.IsDir() {
			return sc.dir(s, p, rel, d)
		}
		return sc.file(s, p, rel, d)
	})
	if err != nil && ctx.Err() != nil {
		clear(sc.warnedNext)
		return s, ctx.Err()
	}
	// The root may have gone while it was walked (an unmounted share):
	// then what was not found is unknown, not deleted.
	if s.rootErr == nil {
		s.rootErr = sc.rootCheck()
	}
	if s.rootErr != nil {
		clear(sc.warnedNext) // the root error is reported instead
		return s, nil
	}
	sc.endWarnings()
	return s, nil
}

// rootCheck says whether the root is a directory now.
func (sc *scanner) rootCheck() error {
	if sc.fault != nil {
		if err := sc.fault("."); err != nil {
			return err
		}
	}
	fi, err := os.Stat(sc.root)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return errRootNotDir
	}
	return nil
}

// dir decides whether to descend into the directory at p.
func (sc *scanner) dir(s *scan, p, rel string, d fs.DirEntry) error {
	if rel != "." {
		if !sc.recursive || sc.match.skipDir(rel, d.Name()) {
			return filepath.SkipDir
		}
		if sc.fault != nil {
			if err := sc.fault(rel); err != nil {
				sc.unreadable(s, p, rel, err)
				return filepath.SkipDir
			}
		}
	}
	s.dirs = append(s.dirs, p)
	return nil
}

// file records the file at p if it counts.
func (sc *scanner) file(s *scan, p, rel string, d fs.DirEntry) error {
	name := d.Name()
	if sc.marker != "" && len(name) > len(sc.marker) && strings.HasSuffix(name, sc.marker) {
		s.markers[rel[:len(rel)-len(sc.marker)]] = struct{}{}
		return nil
	}
	if !sc.match.file(rel, name) {
		return nil
	}
	var (
		fi  fs.FileInfo
		err error
	)
	switch t := d.Type(); {
	case t.IsRegular():
		fi, err = d.Info()
	case t&fs.ModeSymlink != 0:
		fi, err = os.Stat(p)
		if err == nil && !fi.Mode().IsRegular() {
			return nil // a link to a directory or a device: not a file
		}
	default:
		return nil // pipes, sockets, devices
	}
	if err == nil && sc.fault != nil {
		err = sc.fault(rel)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// Gone between the listing and the lstat (or a dangling link):
		// it is not there.
		return nil
	case err != nil:
		sc.unreadable(s, p, rel, err)
		return nil
	}
	s.files = append(s.files, file{key: rel, size: fi.Size(), mtime: fi.ModTime().UnixNano()})
	return nil
}

// rootProblem is how a root error reads in the trigger's error state, e.g.
// "path /data/inbox: no such directory".
func rootProblem(root string, err error) string {
	reason := err.Error()
	switch {
	case errors.Is(err, fs.ErrNotExist):
		reason = "no such directory"
	case errors.Is(err, fs.ErrPermission):
		reason = "permission denied"
	case errors.Is(err, errRootNotDir):
		reason = "not a directory"
	default:
		var pe *fs.PathError
		if errors.As(err, &pe) {
			reason = pe.Err.Error()
		}
	}
	return "path " + root + ": " + reason
}
