//go:build unix

package handlers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/jobtype"
)

func TestExec(t *testing.T) {
	b := setup(t)
	tests := []struct {
		name    string
		params  map[string]any
		want    execResult // Duration ignored
		exit    int        // expected ExitError code; 0: success
		errText string     // in the error
	}{
		{
			name:   "stdout",
			params: map[string]any{"argv": []string{"echo", "hello", "world"}},
			want:   execResult{Stdout: "hello world\n", StdoutBytes: 12},
		},
		{
			name:   "no shell",
			params: map[string]any{"argv": []string{"echo", "$HOME", "*"}},
			want:   execResult{Stdout: "$HOME *\n", StdoutBytes: 8},
		},
		{
			name:   "env and dir",
			params: map[string]any{"argv": []string{"sh", "-c", `printf '%s %s' "$DPE_X" "$(pwd)"`}, "env": []string{"DPE_X=a=b"}, "dir": b.root},
			want:   execResult{Stdout: "a=b " + b.root, StdoutBytes: int64(4 + len(b.root))},
		},
		{
			name:    "exit code and stderr",
			params:  map[string]any{"argv": []string{"sh", "-c", "echo out; echo 'disk on fire' >&2; exit 3"}},
			want:    execResult{ExitCode: 3, Stdout: "out\n", Stderr: "disk on fire\n", StdoutBytes: 4, StderrBytes: 13},
			exit:    3,
			errText: "exec: sh: exit status 3: disk on fire",
		},
		{
			name:   "truncated head",
			params: map[string]any{"argv": []string{"sh", "-c", "i=0; while [ $i -lt 100 ]; do echo 123456789; i=$((i+1)); done"}, "max_output": 25},
			want:   execResult{Stdout: "123456789\n123456789\n12345", Truncated: true, StdoutBytes: 1000},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := b.run(t, jobtype.Exec, tt.params)
			var ee *ExitError
			switch {
			case tt.exit == 0 && err != nil:
				t.Fatalf("err = %v", err)
			case tt.exit != 0 && (!errors.As(err, &ee) || ee.Code != tt.exit || IsPermanent(err)):
				t.Fatalf("err = %#v, want a retryable ExitError with code %d", err, tt.exit)
			case tt.errText != "" && err.Error() != tt.errText:
				t.Errorf("error %q, want %q", err, tt.errText)
			}
			got := res.(execResult)
			got.Duration = 0
			if got != tt.want {
				t.Errorf("result %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestExecFailsToStart(t *testing.T) {
	b := setup(t)
	for _, params := range []map[string]any{
		{"argv": []string{"dpe-no-such-program"}},
		{"argv": []string{"true"}, "dir": filepath.Join(b.root, "missing")},
		{"argv": []string{"./missing.sh"}, "dir": b.root},
	} {
		if _, err := b.run(t, jobtype.Exec, params); !IsPermanent(err) {
			t.Errorf("%v: err = %v, want permanent", params, err)
		}
	}
}

// A program given as a relative path is found in dir, not through PATH.
func TestExecRelativeProgram(t *testing.T) {
	b := setup(t)
	script := filepath.Join(b.root, "run.sh")
	writeFile(t, script, "#!/bin/sh\necho ran in \"$(pwd)\"\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := b.run(t, jobtype.Exec, map[string]any{"argv": []string{"./run.sh"}, "dir": b.root})
	if err != nil || res.(execResult).Stdout != "ran in "+b.root+"\n" {
		t.Fatalf("exec ./run.sh = %+v, %v", res, err)
	}
}

// The stderr tail in the error is the end of a long stderr, not its head.
func TestExecStderrTail(t *testing.T) {
	b := setup(t)
	_, err := b.run(t, jobtype.Exec, map[string]any{
		"argv":       []string{"sh", "-c", "i=0; while [ $i -lt 500 ]; do echo noise >&2; i=$((i+1)); done; echo the-real-error >&2; exit 1"},
		"max_output": 10,
	})
	var ee *ExitError
	if !errors.As(err, &ee) || !strings.HasSuffix(ee.Stderr, "the-real-error\n") || len(ee.Stderr) > tailSize {
		t.Fatalf("err = %v, want the stderr tail", err)
	}
}

func TestExecTimeout(t *testing.T) {
	b := setup(t)
	res, err := b.run(t, jobtype.Exec, map[string]any{"argv": []string{"sleep", "30"}, "timeout": "50ms"})
	if err == nil || !strings.Contains(err.Error(), "timed out after 50ms") || IsPermanent(err) {
		t.Fatalf("err = %v, want a retryable timeout", err)
	}
	if r := res.(execResult); r.ExitCode != -1 || r.Duration.D() > 10*time.Second {
		t.Errorf("result %+v", r)
	}
}

// Cancelling an exec job kills the program's children too: a shell's
// background sleep must not survive (nor keep Run waiting on its output).
func TestExecCancelKillsChildren(t *testing.T) {
	b := setup(t)
	fifo := filepath.Join(b.root, "pid")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tk := task(t, jobtype.Exec, map[string]any{"argv": []string{"sh", "-c", `sleep 30 & echo $! > "$1"; wait`, "sh", fifo}}, nil)
	done := make(chan error, 1)
	go func() {
		_, err := b.h[jobtype.Exec].Run(ctx, tk)
		done <- err
	}()

	// Opening the fifo blocks until the shell writes the child's pid.
	pidc := make(chan string, 1)
	go func() {
		data, _ := os.ReadFile(fifo)
		pidc <- strings.TrimSpace(string(data))
	}()
	var pid int
	select {
	case s := <-pidc:
		var err error
		if pid, err = strconv.Atoi(s); err != nil {
			t.Fatalf("pid %q: %v", s, err)
		}
	case err := <-done:
		t.Fatalf("exec ended before reporting its child: %v", err)
	case <-time.After(10 * time.Second):
		// Unblock the reader so it does not leak, then fail.
		if w, err := os.OpenFile(fifo, os.O_WRONLY, 0); err == nil {
			w.Close()
		}
		<-pidc
		t.Fatal("no pid from the shell")
	}

	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	waitGone(t, pid)
}

// waitGone fails unless process pid is gone or a zombie (killed, waiting
// for whoever inherited it to reap it) within a few seconds.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	// The kernel's reaping has no event to wait on: poll.
	eventually.True(t, 5*time.Second, func() bool {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return true
		}
		if stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); err == nil {
			if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
				return true
			}
		}
		return false
	}, fmt.Sprintf("child %d to be gone after cancel", pid))
}

// testExecPolicy allows the programs the exec tests run (the shell tools
// found through PATH, and root/run.sh) and lets jobs set DPE_X.
func testExecPolicy(t *testing.T, root string) ExecPolicy {
	t.Helper()
	p := ExecPolicy{Allow: []string{filepath.Join(root, "run.sh")}, JobEnv: []string{"DPE_X"}}
	for _, name := range []string{"echo", "sh", "sleep", "true", "env"} {
		path, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("test needs %s: %v", name, err)
		}
		p.Allow = append(p.Allow, filepath.Clean(path))
	}
	return p
}

// TestExecAllowList (finding 1): a program not in the allow-list does not
// run, whether named bare, by another path or through "..", and the
// failure is permanent; an allowed one runs in a clean environment that
// holds neither DPE_TOKEN nor DPE_DB nor anything else of the processor's.
func TestExecAllowList(t *testing.T) {
	t.Setenv("DPE_TOKEN", "secret-token")
	t.Setenv("DPE_DB", "postgres://u:pw@db/x")
	t.Setenv("DPE_PROCESSOR_ONLY", "x")
	b := setup(t)
	for _, argv := range [][]string{
		{"cat", "/etc/hostname"},
		{"/bin/cat", "/etc/hostname"},
		{"/usr/bin/../bin/cat", "/etc/hostname"},
		{"./other.sh"},
	} {
		_, err := b.run(t, jobtype.Exec, map[string]any{"argv": argv, "dir": b.root})
		if err == nil || !IsPermanent(err) || !strings.Contains(err.Error(), "allow-list") {
			t.Errorf("argv %v: err %v, want a permanent allow-list refusal", argv, err)
		}
	}
	for _, env := range []string{"LD_PRELOAD=/tmp/evil.so", "DPE_TOKEN=x", "PATH=/tmp"} {
		_, err := b.run(t, jobtype.Exec, map[string]any{"argv": []string{"true"}, "env": []string{env}})
		if err == nil || !IsPermanent(err) {
			t.Errorf("env %s: err %v, want refused", env, err)
		}
	}
	res, err := b.run(t, jobtype.Exec, map[string]any{"argv": []string{"env"}, "env": []string{"DPE_X=1"}})
	if err != nil {
		t.Fatal(err)
	}
	out := res.(execResult).Stdout
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, _, _ := strings.Cut(line, "=")
		if k != "PATH" && k != "DPE_X" {
			t.Errorf("job environment holds %s; want only PATH and DPE_X:\n%s", k, out)
		}
	}
	if off := Builtins(Config{}); off[jobtype.Exec] != nil {
		t.Error("exec served without an allow-list")
	}
	if err := (ExecPolicy{Allow: []string{"bin/sh"}}).Check(); err == nil {
		t.Error("a relative allow-list entry was accepted")
	}
	if err := (ExecPolicy{Allow: []string{"/bin/sh"}, Env: []string{"DPE_TOKEN"}}).Check(); err == nil {
		t.Error("a policy passing DPE_TOKEN was accepted")
	}
}
