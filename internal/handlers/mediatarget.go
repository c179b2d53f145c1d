package handlers

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// tempTarget is the temporary file a media job writes before renaming it
// over its target: ".NAME.dpe-tmp-RANDOM.EXT" in the target's directory
// (the extension kept, for programs that look at it), so the target is
// never seen half-written.
type tempTarget struct {
	cfg  Config
	dir  string
	to   string
	path string
}

// newTempTarget creates the directory of to and an empty temporary file in
// it.
func newTempTarget(cfg Config, to string) (*tempTarget, error) {
	dir := filepath.Dir(to)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fsErr(err)
	}
	base := filepath.Base(to)
	f, err := os.CreateTemp(dir, "."+base+".dpe-tmp-*"+filepath.Ext(base))
	if err != nil {
		return nil, fsErr(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return nil, err
	}
	return &tempTarget{cfg: cfg, dir: dir, to: to, path: f.Name()}, nil
}

// commit syncs the temporary file and renames it over the target.
func (t *tempTarget) commit() error {
	f, err := os.OpenFile(t.path, os.O_RDWR, 0)
	if err != nil {
		return fsErr(err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", t.path, err)
	}
	if err := os.Rename(t.path, t.to); err != nil {
		return fsErr(err)
	}
	syncDir(t.cfg, t.dir)
	return nil
}

// abort removes the temporary file; after commit it finds nothing.
func (t *tempTarget) abort() {
	if err := os.Remove(t.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.cfg.Log.Warn("cannot remove temporary file", "path", t.path, "err", err)
	}
}

// A sidecar records what a media job made a target from: the hidden file
// ".NAME.dpe-media.json" next to the target holds a digest of the job
// type, the normalised params, and the source's path, size and
// modification time, with the size and modification time the target had
// when written. A later run with the same digest that finds the target
// unchanged does not redo the work. (A source rewritten in place keeping
// its size and time to the nanosecond would fool it; checksumming every
// source would cost as much as a thumbnail.)
type sidecar struct {
	Key         string `json:"key"`
	TargetSize  int64  `json:"target_size"`
	TargetMtime int64  `json:"target_mtime_ns"`
}

// sidecarPath is the sidecar of target.
func sidecarPath(target string) string {
	return filepath.Join(filepath.Dir(target), "."+filepath.Base(target)+".dpe-media.json")
}

// mediaKey digests what a target is made from. params must marshal
// deterministically (a struct).
func mediaKey(typ string, params any, source string) (string, error) {
	fi, err := os.Stat(source)
	if err != nil {
		return "", fsErr(err)
	}
	b, err := json.Marshal(params)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n%d\n%d\n", typ, b, source, fi.Size(), fi.ModTime().UnixNano())
	return hex.EncodeToString(h.Sum(nil)), nil
}

// alreadyMade reports whether target exists as a run with key wrote it.
func alreadyMade(target, key string) bool {
	fi, err := os.Stat(target)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	b, err := os.ReadFile(sidecarPath(target))
	if err != nil {
		return false
	}
	var s sidecar
	if json.Unmarshal(b, &s) != nil {
		return false
	}
	return s.Key == key && s.TargetSize == fi.Size() && s.TargetMtime == fi.ModTime().UnixNano()
}

// writeSidecar records that target was made with key. A failure is only
// logged: the target is there, a later run merely redoes it.
func writeSidecar(cfg Config, target, key string) {
	fi, err := os.Stat(target)
	if err == nil {
		b, _ := json.Marshal(sidecar{Key: key, TargetSize: fi.Size(), TargetMtime: fi.ModTime().UnixNano()})
		p := sidecarPath(target)
		tmp := p + ".tmp"
		if err = os.WriteFile(tmp, append(b, '\n'), 0o644); err == nil {
			err = os.Rename(tmp, p)
		}
	}
	if err != nil {
		cfg.Log.Warn("cannot write media sidecar; the target will be remade by a later run", "target", target, "err", err)
	}
}

// containerOf returns the container named by the extension of path among
// byExt, or "" when none fits.
func containerOf(path string, byExt map[string]string) string {
	return byExt[strings.ToLower(filepath.Ext(path))]
}
