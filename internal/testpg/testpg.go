// Package testpg runs a private PostgreSQL cluster for one test: its own
// data directory, port and socket directory, made by initdb and driven by
// pg_ctl from the PostgreSQL server binaries installed on the machine.
// Tests that stop, restart or otherwise hurt PostgreSQL use it instead of
// the shared server named by DPE_TEST_POSTGRES (package testdb), which
// other tests use at the same time and which must never be touched.
//
// # Binaries
//
// initdb and pg_ctl come from the newest /usr/lib/postgresql/VERSION/bin
// (the Debian and Ubuntu layout), else from PATH. When they are missing
// the test is skipped, or fails when DPE_TEST_STRICT=1 (as CI sets it).
//
// # Running as root
//
// PostgreSQL refuses to run as root. When the test runs as root (as CI
// does), every initdb and pg_ctl command runs as the OS user postgres
// through `runuser -u postgres --` (or `su postgres -c` where runuser is
// missing): the cluster's directory, a t.TempDir(), is chowned to
// postgres, and the test's temporary directories above it (which the
// testing package makes 0700) get o+x so that postgres can reach it. A
// root without a postgres user skips the test (fails when strict).
//
// The cluster trusts every local connection (it listens on 127.0.0.1
// only), runs with fsync=off (its stops are clean, and its data is thrown
// away) and is stopped by t.Cleanup.
package testpg

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/testdb"
)

// Database is the database Start creates; DSN names it.
const Database = "dpe"

// pgCtlTimeout bounds pg_ctl's wait for the server to start or stop.
const pgCtlTimeout = 60

// Cluster is one private PostgreSQL cluster. Its methods must be called
// from the test's goroutine (they end the test with t.Fatal on failure).
type Cluster struct {
	t    testing.TB
	bin  binaries
	dir  string // owned by the cluster's OS user: data, socket, log
	data string
	sock string
	log  string
	port int

	mu      sync.Mutex
	running bool
}

// Start makes a new cluster in a t.TempDir(), starts it on a free port of
// 127.0.0.1, creates the database Database and returns the cluster. The
// cluster is stopped when the test ends.
func Start(t testing.TB) *Cluster {
	t.Helper()
	bin := findBinaries(t)
	dir := t.TempDir()
	bin.prepareDir(t, dir)
	c := &Cluster{
		t: t, bin: bin, dir: dir,
		data: filepath.Join(dir, "data"),
		sock: socketDir(t, bin, dir),
		log:  filepath.Join(dir, "postgres.log"),
	}
	c.pgctl("initdb", "-D", c.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	t.Cleanup(c.cleanup)
	// Another process may take the free port before the server binds it:
	// pick another one then.
	for try := 1; ; try++ {
		c.port = freePort(t)
		err := c.start()
		if err == nil {
			break
		}
		if try == 3 || !strings.Contains(c.logTail(), "could not bind") {
			t.Fatalf("testpg: start PostgreSQL on port %d: %v\n%s", c.port, err, c.logTail())
		}
	}
	c.createDatabase()
	return c
}

// DSN is the URL of the database Database, as the user postgres over TCP.
// It stays the same across Stop and StartAgain.
func (c *Cluster) DSN() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, Database)
}

// Port is the TCP port the cluster listens on.
func (c *Cluster) Port() int { return c.port }

// Stop stops the server with `pg_ctl stop -m fast` (open connections are
// ended, the data is checkpointed) and waits until it is down.
func (c *Cluster) Stop() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		c.t.Fatal("testpg: Stop: the cluster is not running")
	}
	c.pgctl("pg_ctl", "stop", "-D", c.data, "-m", "fast", "-w", "-t", strconv.Itoa(pgCtlTimeout))
	c.running = false
}

// StartAgain starts the stopped server again on the same port and waits
// until it accepts connections.
func (c *Cluster) StartAgain() {
	c.t.Helper()
	if err := c.start(); err != nil {
		c.t.Fatalf("testpg: start PostgreSQL again on port %d: %v\n%s", c.port, err, c.logTail())
	}
}

// Restart stops the server (Stop), keeps it down for down, and starts it
// again (StartAgain): a database outage of about down plus the time a
// fast stop and a start take.
func (c *Cluster) Restart(down time.Duration) {
	c.t.Helper()
	c.Stop()
	time.Sleep(down) // the outage itself: there is nothing to wait for
	c.StartAgain()
}

// start runs pg_ctl start and waits until the server accepts connections.
func (c *Cluster) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return errors.New("already running")
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", c.port, c.sock)
	out, err := c.bin.command(c.dir, "pg_ctl", "start", "-D", c.data, "-l", c.log, "-w",
		"-t", strconv.Itoa(pgCtlTimeout), "-o", opts).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl start: %v: %s", err, out)
	}
	c.running = true
	return nil
}

// cleanup stops a running server at the end of the test (immediately: the
// data is thrown away) and shows the server's log when the test failed.
func (c *Cluster) cleanup() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.Failed() {
		c.t.Logf("testpg: end of the PostgreSQL log %s:\n%s", c.log, c.logTail())
	}
	if !c.running {
		return
	}
	out, err := c.bin.command(c.dir, "pg_ctl", "stop", "-D", c.data, "-m", "immediate", "-w",
		"-t", strconv.Itoa(pgCtlTimeout)).CombinedOutput()
	if err != nil {
		c.t.Errorf("testpg: stop PostgreSQL at the end of the test: %v: %s", err, out)
		return
	}
	c.running = false
}

// pgctl runs one of the binaries to completion and fails the test when it
// fails.
func (c *Cluster) pgctl(name string, args ...string) {
	c.t.Helper()
	out, err := c.bin.command(c.dir, name, args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("testpg: %s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// createDatabase creates the database Database.
func (c *Cluster) createDatabase() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		c.t.Fatalf("testpg: connect to the new cluster: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+Database); err != nil {
		c.t.Fatalf("testpg: create database %s: %v", Database, err)
	}
}

// logTail is the last few KiB of the server's log.
func (c *Cluster) logTail() string {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	const max = 4 << 10
	if len(b) > max {
		b = b[len(b)-max:]
	}
	return string(b)
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// skipOrFail skips the test with msg, or fails it when DPE_TEST_STRICT=1.
func skipOrFail(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv(testdb.EnvStrict) == "1" {
		t.Fatal(msg + " (" + testdb.EnvStrict + "=1 makes this a failure)")
	}
	t.Skip(msg)
}

// lookPath is exec.LookPath that also looks in the sbin directories, which
// a non-login root shell may lack in PATH.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}
