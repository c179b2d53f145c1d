//go:build unix

package location

import (
	"io/fs"
	"syscall"
)

// wOK and xOK are access(2)'s W_OK and X_OK, which package syscall does
// not name on every Unix.
const (
	wOK = 0x2
	xOK = 0x1
)

// probeWrite asks the kernel whether root may be written: access(2) checks
// permissions for the real user and refuses a read-only mount (EROFS), a
// common state of a failing disk or an NFS export gone read-only.
func probeWrite(root string) error {
	if err := syscall.Access(root, wOK|xOK); err != nil {
		return &fs.PathError{Op: "access", Path: root, Err: err}
	}
	return nil
}
