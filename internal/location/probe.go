package location

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// ProbeDir is the default ProbeFunc: root must exist, be a directory (a
// symbolic link to one is fine) and list (one entry is read, which reaches
// the server of a network mount and so finds a stale handle or a dead
// share); it is writable when the operating system grants write access to
// it (probeWrite). The probe creates no files: a folder watcher or a sync
// on the location would see them.
func ProbeDir(root string) (readErr, writeErr error) {
	fi, err := os.Stat(root)
	if err != nil {
		return err, err
	}
	if !fi.IsDir() {
		err := fmt.Errorf("%s: not a directory", root)
		return err, err
	}
	f, err := os.Open(root)
	if err != nil {
		return err, err
	}
	defer f.Close()
	if _, err := f.ReadDir(1); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("list %s: %w", root, err), err
	}
	return nil, probeWrite(root)
}
