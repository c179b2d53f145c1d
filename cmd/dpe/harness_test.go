package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/testbin"
)

// The end-to-end tests drive the real dpe binary in real processes.

// dpeBinary is the dpe binary of this test run.
func dpeBinary(t *testing.T) string { return testbin.DPE(t) }

// proc is a running dpe process.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
	err  error
	line chan string // stdout lines, for waiting on a message
}

// startDPE starts `dpe args...` in dir; the process is killed at cleanup.
func startDPE(t *testing.T, name, dir string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(dpeBinary(t), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DPE_LOG_LEVEL=info")
	return startCmd(t, name, cmd)
}

// startCmd starts a process (dpe, HAProxy) under the test harness: its output is collected and shown when the test
// fails, and it is killed at cleanup.
func startCmd(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, cmd: cmd, done: make(chan struct{}), line: make(chan string, 1024)}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go p.collect(&wg, stdout, true)
	go p.collect(&wg, stderr, false)
	go func() {
		wg.Wait()
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of %s:\n%s", name, p.output())
		}
	})
	return p
}

func (p *proc) collect(wg *sync.WaitGroup, r io.Reader, stdout bool) {
	defer wg.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.mu.Lock()
		p.out.WriteString(sc.Text() + "\n")
		p.mu.Unlock()
		if stdout {
			select {
			case p.line <- sc.Text():
			default:
			}
		}
	}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for the exit, failing after the timeout.
func (p *proc) stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.t.Errorf("%s did not stop within %s after SIGTERM", p.name, timeout)
		p.kill()
		return p.err
	}
}

// waitLine waits for a stdout line containing substr and returns it.
func (p *proc) waitLine(substr string, timeout time.Duration) string {
	p.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-p.line:
			if strings.Contains(l, substr) {
				return l
			}
		case <-p.done:
			p.t.Fatalf("%s exited (%v) before printing %q:\n%s", p.name, p.err, substr, p.output())
		case <-deadline:
			p.t.Fatalf("%s did not print %q within %s:\n%s", p.name, substr, timeout, p.output())
		}
	}
}

// runDPE runs a dpe command to completion and returns its stdout, stderr
// and exit code.
func runDPE(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, dpeBinary(t), args...)
	cmd.Dir = dir
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run dpe %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

// freeAddr returns a free loopback address.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitReady waits until the server at url answers /readyz.
func waitReady(t *testing.T, c *client.Client, timeout time.Duration) {
	t.Helper()
	eventually.NoError(t, timeout, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ready(ctx)
	}, "the server to be ready")
}

func newClient(t *testing.T, urls ...string) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{URLs: urls, Deadline: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// upClient is a client of the `dpe up` whose data directory is data,
// with the admin token it made on first start.
func upClient(t *testing.T, url, data string) *client.Client {
	t.Helper()
	tok, err := readTokenFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(client.Config{URLs: []string{url}, Token: tok, Deadline: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// isStatus reports whether err is an API error with the HTTP status.
func isStatus(err error, status int) bool {
	var ae *client.APIError
	return errors.As(err, &ae) && ae.Status == status
}

// upRun is a `dpe up` started by startUp.
type upRun struct {
	dir  string // its working directory; its data directory is dir/data
	addr string // host:port it listens on
	url  string // http://addr
	up   *proc
	t    *testing.T
}

// startUp starts `dpe up` in a fresh directory with args added and waits
// until it is up.
func startUp(t *testing.T, args ...string) *upRun {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	up := startDPE(t, "dpe up", dir, append([]string{"up", "--data", filepath.Join(dir, "data"), "--listen", addr}, args...)...)
	up.waitLine("dpe is up", 60*time.Second)
	return &upRun{dir: dir, addr: addr, url: "http://" + addr, up: up, t: t}
}

// dpe runs the CLI in u's directory against it: stdout, stderr, exit code.
func (u *upRun) dpe(args ...string) (string, string, int) {
	u.t.Helper()
	return runDPE(u.t, u.dir, append(args, "--server", u.url)...)
}
