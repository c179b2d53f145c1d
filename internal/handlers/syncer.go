package handlers

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"path/filepath"
	"strings"
	"syscall"
)

// errEmptyMaster stops the deletes of a sync whose master has no files at
// all: that is far more likely an unmounted share (an empty mount point)
// than an archive emptied on purpose, and deleting would wipe every
// replica.
var errEmptyMaster = errors.New("the master has no files: nothing deleted on the replicas (is it mounted?)")

// syncer is one run of util.sync.
type syncer struct {
	cfg     Config
	p       syncParams
	rep     *syncReport
	master  string // the master root, symbolic links evaluated
	newHash func() hash.Hash
	meter   *meter
	done    int64 // master bytes dealt with, for progress
}

// run mirrors the master to the replicas, then looks for the files only
// the replicas have. Progress is the share of the master's bytes done.
func (s *syncer) run(ctx context.Context, t Task) error {
	total, err := s.scan(ctx)
	if err != nil {
		return err
	}
	s.meter = newMeter(t, s.cfg.Clock, "synced", total)
	if err := s.mirror(ctx); err != nil {
		return err
	}
	if s.p.Delete && s.rep.Files == 0 {
		s.rep.fail("", errEmptyMaster)
	}
	for _, r := range s.rep.Replicas {
		if r.skip {
			continue
		}
		if err := s.extras(ctx, r); err != nil {
			return err
		}
	}
	s.meter.update(max(total, s.done))
	return nil
}

// scan sums the sizes of the master's files, for progress.
func (s *syncer) scan(ctx context.Context) (int64, error) {
	var total int64
	err := filepath.WalkDir(s.master, func(path string, d fs.DirEntry, err error) error {
		switch {
		case ctx.Err() != nil:
			return ctxErr(ctx)
		case err != nil:
			if path == s.master {
				return fmt.Errorf("read master: %w", err)
			}
			return nil // reported by mirror
		case !d.Type().IsRegular() || isTempName(d.Name()):
			return nil
		}
		if fi, err := d.Info(); err == nil {
			total += fi.Size()
		}
		return nil
	})
	return total, err
}

// mirror walks the master and brings each file to every usable replica.
// Directories are created on the replicas as they are met, so empty ones
// are mirrored too. Temporary files of copies under way are ignored.
func (s *syncer) mirror(ctx context.Context) error {
	return filepath.WalkDir(s.master, func(path string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctxErr(ctx)
		}
		rel := relTo(s.master, path)
		switch {
		case err != nil && rel == "":
			return fmt.Errorf("read master: %w", err)
		case err != nil:
			s.rep.fail(rel, fmt.Errorf("read master: %w", err))
			return nil
		case d.IsDir():
			s.mkdirs(rel)
			return nil
		case isTempName(d.Name()):
			return nil
		case !d.Type().IsRegular():
			s.rep.Skipped++
			return nil
		}
		return s.file(ctx, path, rel)
	})
}

// mkdirs creates directory rel on each usable replica.
func (s *syncer) mkdirs(rel string) {
	if rel == "" || s.p.DryRun {
		return
	}
	for _, r := range s.rep.Replicas {
		if r.skip {
			continue
		}
		dir, err := r.guard.Resolve(r.path(rel))
		if err == nil {
			err = r.guard.MkdirAll(dir, 0o755)
		}
		if err != nil {
			r.fail(rel, fmt.Errorf("create directory: %w", err))
		}
	}
}

// file brings the master file from (rel in the location) to each usable
// replica. Only a cancelled context stops the sync; other failures are
// recorded against their replica.
func (s *syncer) file(ctx context.Context, from, rel string) error {
	src, err := s.cfg.Guard.Lstat(from)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil // deleted on the master since its directory was read
	case err != nil:
		s.rep.fail(rel, fmt.Errorf("read master: %w", err))
		return nil
	}
	s.rep.Files++
	s.rep.Bytes += src.Size()
	var sum string // the master file's checksum, computed at most once
	for _, r := range s.rep.Replicas {
		if r.skip {
			continue
		}
		if err := s.replicaFile(ctx, r, from, rel, src, &sum); err != nil {
			if ctx.Err() != nil {
				return ctxErr(ctx)
			}
			r.fail(rel, err)
		}
	}
	s.done += src.Size()
	s.meter.update(s.done)
	return nil
}

// replicaFile brings one master file to replica r: nothing when the
// replica's file has the same size and checksum, else a copy (temporary
// name, sync, rename) that is read back and verified.
func (s *syncer) replicaFile(ctx context.Context, r *replicaReport, from, rel string, src fs.FileInfo, sum *string) error {
	to, err := r.guard.Resolve(r.path(rel))
	if err != nil {
		return err
	}
	action := "copied"
	dst, err := r.guard.Lstat(to)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("replica: %w", err)
	case dst.IsDir():
		return errors.New("a directory on the replica, a file on the master: left alone")
	case dst.Mode().IsRegular() && dst.Size() == src.Size():
		same, err := s.sameSum(ctx, from, to, sum)
		if err != nil || same {
			if same {
				r.Verified++
			}
			return err
		}
		action = "repaired"
	default: // another size, or a link where the master has a file
		action = "repaired"
	}
	if s.p.DryRun {
		r.change(rel, action, src.Size())
		return nil
	}
	copied, err := copyFile(ctx, s.cfg, from, to, src, func(int64) {})
	if err != nil {
		return err
	}
	if err := s.verify(ctx, from, to, copied, sum); err != nil {
		return err
	}
	r.change(rel, action, src.Size())
	return nil
}

// sameSum reports whether the files from (master) and to (replica) have
// the same checksum.
func (s *syncer) sameSum(ctx context.Context, from, to string, sum *string) (bool, error) {
	if err := s.masterSum(ctx, from, sum); err != nil {
		return false, err
	}
	got, _, err := hashFile(ctx, s.cfg.Guard, to, s.newHash(), func(int64) {})
	if err != nil {
		return false, fmt.Errorf("replica: %w", err)
	}
	return got == *sum, nil
}

// masterSum computes the master file's checksum into *sum unless known.
func (s *syncer) masterSum(ctx context.Context, from string, sum *string) error {
	if *sum != "" {
		return nil
	}
	got, _, err := hashFile(ctx, s.cfg.Guard, from, s.newHash(), func(int64) {})
	if err != nil {
		return fmt.Errorf("read master: %w", err)
	}
	*sum = got
	return nil
}

// verify reads the copy at to back and compares its checksum with the
// master's. copied is the SHA-256 copyFile computed of what it read from
// the master: with sha256 it saves reading the master again.
func (s *syncer) verify(ctx context.Context, from, to, copied string, sum *string) error {
	if *sum == "" && s.p.Algorithm == "sha256" {
		*sum = copied
	}
	if err := s.masterSum(ctx, from, sum); err != nil {
		return err
	}
	got, _, err := hashFile(ctx, s.cfg.Guard, to, s.newHash(), func(int64) {})
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if got != *sum {
		return fmt.Errorf("verify: %s of the copy is %s, the master's %s (the master changed, or the replica is failing)", s.p.Algorithm, got, *sum)
	}
	return nil
}

// extras walks replica r for what the master does not have: files are
// deleted (delete: true) or reported and kept, directories go when they
// are empty after that. A path whose presence on the master cannot be told
// (an I/O error) is left alone.
func (s *syncer) extras(ctx context.Context, r *replicaReport) error {
	del := s.p.Delete && s.rep.Files > 0
	var dirs []string // extra directories, parents first
	err := filepath.WalkDir(r.real, func(path string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return ctxErr(ctx)
		}
		rel := relTo(r.real, path)
		switch {
		case err != nil:
			r.fail(rel, fmt.Errorf("read replica: %w", err))
			return nil
		case rel == "" || !d.IsDir() && isTempName(d.Name()):
			return nil
		}
		_, err = s.cfg.Guard.Lstat(filepath.Join(s.master, filepath.FromSlash(rel)))
		switch {
		case err == nil:
			return nil
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			r.fail(rel, fmt.Errorf("master: %w", err))
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		case d.IsDir():
			if del {
				dirs = append(dirs, path)
			}
			return nil
		case !del:
			r.change(rel, "extra", 0)
			return nil
		}
		if !s.p.DryRun {
			if err := r.guard.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				r.fail(rel, fmt.Errorf("delete: %w", err))
				return nil
			}
		}
		r.change(rel, "deleted", 0)
		return nil
	})
	if err != nil || s.p.DryRun {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		// Children first; one that is not empty (a copy under way) stays.
		if err := r.guard.Remove(dirs[i]); err != nil {
			s.cfg.Log.Debug("util.sync: extra directory kept", "dir", dirs[i], "err", err)
		}
	}
	return nil
}

// path is rel (slash-separated) under the replica.
func (r *replicaReport) path(rel string) string {
	return filepath.Join(r.real, filepath.FromSlash(rel))
}

// relTo returns path relative to root, slash-separated; "" for root.
func relTo(root, path string) string {
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == "." {
		return ""
	}
	return filepath.ToSlash(rel)
}

// isTempName reports whether name is a temporary file of copyFile
// (".NAME.dpe-tmp-RANDOM"): a copy under way, or the leftover of one that
// crashed, never a file to mirror or delete.
func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, ".dpe-tmp-")
}
