//go:build !unix

package handlers

import "os/exec"

// setProcessGroup leaves cmd as it is: without Unix process groups only
// the program itself is killed on cancellation.
func setProcessGroup(cmd *exec.Cmd) {}

// killProcessGroup kills the program (its children are not reached).
func killProcessGroup(cmd *exec.Cmd) error { return cmd.Process.Kill() }
