//go:build unix

package handlers

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// setProcessGroup starts cmd in a process group of its own and makes its
// cancellation kill the whole group, so the children of a shell script die
// with it instead of holding its output open.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return killProcessGroup(cmd) }
}

// killProcessGroup sends SIGKILL to cmd's process group. A group already
// gone is os.ErrProcessDone, which exec.Cmd does not report.
func killProcessGroup(cmd *exec.Cmd) error {
	// The group's id is the leader's pid (Setpgid). While any member
	// lives the kernel does not reuse that number; once all are gone the
	// kill finds no group (ESRCH), short of a new process taking the number
	// and leading a group of its own in the instant between.
	err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}
