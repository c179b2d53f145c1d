// Package holder names a running copy of a role: the id a processor,
// worker or server reports to the server and the holder a standby copy
// puts on its leases. One format everywhere, so an operator reading a
// lease, a job's processor or a log line finds the process:
//
//	<role>@<host>:<pid>:<random>
//
// e.g. "worker@media-01:4242:k3x9q2ab". The host and pid name the machine
// and the process; eight random base32 characters (40 bits) keep two
// starts apart even when a pid is reused or the host name is shared.
package holder

import (
	"crypto/rand"
	"fmt"
	"os"
	"strings"
)

// New returns a fresh id for a copy of role on this machine, unique per
// call.
func New(role string) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown"
	}
	return Format(role, host, os.Getpid(), strings.ToLower(rand.Text()[:8]))
}

// Format assembles an id from its parts; New is Format with this process's
// host, pid and fresh random characters.
func Format(role, host string, pid int, random string) string {
	if role == "" {
		role = "dpe"
	}
	return fmt.Sprintf("%s@%s:%d:%s", role, host, pid, random)
}
