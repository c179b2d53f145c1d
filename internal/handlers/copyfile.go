package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path/filepath"

	"github.com/dpe-engine/dpe/internal/paths"
)

// bufSize is the chunk size of file copies and hashes: big enough for
// network shares, small enough that cancellation is noticed quickly.
const bufSize = 1 << 20

// errSourceChanged: the source was being written while it was copied; a
// later attempt will find it complete.
var errSourceChanged = errors.New("source changed while it was read")

// copyData copies src to dst chunk by chunk, checking ctx between chunks and
// calling progress with the bytes copied so far.
func copyData(ctx context.Context, dst io.Writer, src io.Reader, progress func(int64)) (int64, error) {
	buf := make([]byte, bufSize)
	var n int64
	for {
		if ctx.Err() != nil {
			return n, ctxErr(ctx)
		}
		r, rerr := src.Read(buf)
		if r > 0 {
			w, werr := dst.Write(buf[:r])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
			progress(n)
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

// hashFile returns the hex digest of the regular file at path and its
// size, opening it through g (see paths.Guard.Open).
func hashFile(ctx context.Context, g *paths.Guard, path string, h hash.Hash, progress func(int64)) (string, int64, error) {
	f, err := g.Open(path)
	if err != nil {
		return "", 0, fsErr(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, fsErr(err)
	}
	if !fi.Mode().IsRegular() {
		return "", 0, Permanent(fmt.Errorf("%s: not a regular file (%s)", path, fi.Mode().Type()))
	}
	n, err := copyData(ctx, h, f, progress)
	if err != nil {
		return "", n, fmt.Errorf("read %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// sha256File is hashFile with SHA-256.
func sha256File(ctx context.Context, g *paths.Guard, path string, progress func(int64)) (string, int64, error) {
	return hashFile(ctx, g, path, sha256.New(), progress)
}

// copyFile copies the regular file from (whose earlier Stat is src) to to
// and returns the SHA-256 of what it wrote. It writes a temporary file
// ".NAME.dpe-tmp-RANDOM" next to the target, syncs it, gives it the source's
// permissions and modification time and renames it over the target, so the
// target is never seen half-written. Missing directories are created. On any
// failure, cancellation included, the temporary file is removed. Every
// file is opened, created and renamed through cfg.Guard, beneath its root.
func copyFile(ctx context.Context, cfg Config, from, to string, src fs.FileInfo, progress func(int64)) (sum string, err error) {
	in, err := cfg.Guard.Open(from)
	if err != nil {
		return "", fsErr(err)
	}
	defer in.Close()
	dir := filepath.Dir(to)
	if err := cfg.Guard.MkdirAll(dir, 0o755); err != nil {
		return "", fsErr(err)
	}
	tmp, tmpName, err := cfg.Guard.CreateTemp(dir, "."+filepath.Base(to)+".dpe-tmp-*")
	if err != nil {
		return "", fsErr(err)
	}
	defer func() {
		if err != nil {
			tmp.Close() // a second Close after a failed rename is harmless
			if rerr := cfg.Guard.Remove(tmpName); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				cfg.Log.Warn("cannot remove temporary file", "path", tmpName, "err", rerr)
			}
		}
	}()
	h := sha256.New()
	n, err := copyData(ctx, io.MultiWriter(tmp, h), in, progress)
	if err != nil {
		return "", fmt.Errorf("copy %s to %s: %w", from, to, err)
	}
	// A file still being written (a recording, an upload) must not be
	// copied half: compare with the size and time seen before.
	after, err := in.Stat()
	if err != nil {
		return "", err
	}
	if n != src.Size() || after.Size() != src.Size() || !after.ModTime().Equal(src.ModTime()) {
		return "", fmt.Errorf("copy %s: %w", from, errSourceChanged)
	}
	if err := tmp.Chmod(src.Mode().Perm()); err != nil {
		return "", fsErr(err)
	}
	// Sync before rename: after a crash the target is either the old file
	// or the complete new one, never a truncated one.
	if err := tmp.Sync(); err != nil {
		return "", fmt.Errorf("sync %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("close %s: %w", tmpName, err)
	}
	if err := cfg.Guard.Chtimes(tmpName, src.ModTime(), src.ModTime()); err != nil {
		return "", fsErr(err)
	}
	if err := cfg.Guard.Rename(tmpName, to); err != nil {
		return "", fsErr(err)
	}
	syncDir(cfg, dir)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// syncDir makes a rename or create in dir durable. Failures are only logged:
// the data is written, and some file systems cannot sync a directory.
func syncDir(cfg Config, dir string) {
	d, err := cfg.Guard.Open(dir)
	if err == nil {
		err = d.Sync()
		d.Close()
	}
	if err != nil {
		cfg.Log.Debug("cannot sync directory", "dir", dir, "err", err)
	}
}
