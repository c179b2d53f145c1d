package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// TestNewCommand checks the preamble every subcommand shares: the global
// flags with their environment defaults, -h, and bad usage as usage errors
// (exit 2).
func TestNewCommand(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		none     bool // parseNone instead of parse
		wantErr  error
		usage    bool // want a usage error
		server   string
		token    string
		pos      []string
		logLevel string
		jsonOut  bool
	}{
		{name: "defaults", server: "http://127.0.0.1:8460", logLevel: "info"},
		{name: "environment", env: map[string]string{"DPE_SERVER": "http://a:1,http://b:2", "DPE_TOKEN": "t", "DPE_LOG_LEVEL": "debug"},
			server: "http://a:1,http://b:2", token: "t", logLevel: "debug"},
		{name: "flags beat the environment", env: map[string]string{"DPE_SERVER": "http://a:1", "DPE_TOKEN": "t"},
			args: []string{"--server", "http://c:3", "--token", "u", "-o", "json"}, server: "http://c:3", token: "u", logLevel: "info", jsonOut: true},
		{name: "flags after positional arguments", args: []string{"x", "-o", "json", "y"},
			server: "http://127.0.0.1:8460", logLevel: "info", jsonOut: true, pos: []string{"x", "y"}},
		{name: "bad output", args: []string{"-o", "yaml"}, usage: true},
		{name: "bad log level", env: map[string]string{"DPE_LOG_LEVEL": "loud"}, usage: true},
		{name: "unknown flag", args: []string{"--nope"}, usage: true},
		{name: "help", args: []string{"-h"}, wantErr: errHelp},
		{name: "positional refused", args: []string{"x"}, none: true, usage: true},
		{name: "none given", none: true, server: "http://127.0.0.1:8460", logLevel: "info"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			e := &env{stdout: &bytes.Buffer{}, stderr: &stderr, getenv: func(k string) string { return tc.env[k] }}
			_, g := newCommand("test", e)
			var pos []string
			var err error
			if tc.none {
				err = g.parseNone(tc.args)
			} else {
				pos, err = g.parse(tc.args)
			}
			var ue usageError
			switch {
			case tc.usage:
				if !errors.As(err, &ue) {
					t.Fatalf("err %v, want a usage error", err)
				}
				return
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				if !bytes.Contains(stderr.Bytes(), []byte("-server")) {
					t.Errorf("help lacks the global flags:\n%s", stderr.String())
				}
				return
			case err != nil:
				t.Fatalf("err %v", err)
			}
			if g.server != tc.server || g.token != tc.token || g.logLevel != tc.logLevel || g.json() != tc.jsonOut {
				t.Errorf("got server %q token %q log %q json %v; want %q %q %q %v",
					g.server, g.token, g.logLevel, g.json(), tc.server, tc.token, tc.logLevel, tc.jsonOut)
			}
			if !slices.Equal(pos, tc.pos) {
				t.Errorf("positional %q, want %q", pos, tc.pos)
			}
			c, err := g.client()
			if err != nil {
				t.Fatalf("client: %v", err)
			}
			if got := len(c.URLs()); got == 0 {
				t.Error("client has no URL")
			}
		})
	}
}

func TestClientBadServerIsUsage(t *testing.T) {
	e := &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }}
	_, g := newCommand("test", e)
	if _, err := g.parse([]string{"--server", "::not a url"}); err != nil {
		t.Fatal(err)
	}
	var ue usageError
	if _, err := g.client(); !errors.As(err, &ue) {
		t.Errorf("client: %v, want a usage error", err)
	}
}

// TestHoistGlobals: global flags before the command move behind it, where
// the subcommand parses them; anything else before the command is bad
// usage.
func TestHoistGlobals(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		want  []string
		usage bool
	}{
		{name: "none", args: []string{"job", "show", "1"}, want: []string{"job", "show", "1"}},
		{name: "empty", args: nil, want: nil},
		{name: "-o before", args: []string{"-o", "json", "job", "show", "1"}, want: []string{"job", "show", "1", "-o", "json"}},
		{name: "inline values", args: []string{"--server=http://a:1", "-o=json", "status"}, want: []string{"status", "--server=http://a:1", "-o=json"}},
		{name: "all globals", args: []string{"--server", "http://a:1", "--token", "t", "--log-level", "debug", "--timeout", "5s", "type", "list"},
			want: []string{"type", "list", "--server", "http://a:1", "--token", "t", "--log-level", "debug", "--server-timeout", "5s"}},
		{name: "--timeout before the command is the global one", args: []string{"--timeout=5s", "job", "submit", "noop"},
			want: []string{"job", "submit", "noop", "--server-timeout=5s"}},
		{name: "after the command untouched", args: []string{"job", "show", "1", "-o", "json"}, want: []string{"job", "show", "1", "-o", "json"}},
		{name: "double dash ends them", args: []string{"-o", "json", "--", "job"}, want: []string{"job", "-o", "json"}},
		{name: "help stays first", args: []string{"-h"}, want: []string{"-h"}},
		{name: "unknown flag before the command", args: []string{"--wait", "job"}, usage: true},
		{name: "missing value", args: []string{"-o"}, usage: true},
		{name: "no command", args: []string{"-o", "json"}, usage: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := hoistGlobals(tc.args)
			var ue usageError
			if tc.usage {
				if !errors.As(err, &ue) {
					t.Fatalf("err %v, want a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestTimeoutFlag: --timeout and DPE_TIMEOUT take a duration or seconds;
// the default is 30s; a bad value is bad usage.
func TestTimeoutFlag(t *testing.T) {
	tests := []struct {
		name  string
		env   string
		args  []string
		want  time.Duration
		usage bool
	}{
		{name: "default", want: 30 * time.Second},
		{name: "environment", env: "5s", want: 5 * time.Second},
		{name: "bare seconds", args: []string{"--timeout", "2"}, want: 2 * time.Second},
		{name: "flag beats environment", env: "5s", args: []string{"--timeout", "1m"}, want: time.Minute},
		{name: "long name", args: []string{"--server-timeout", "3s"}, want: 3 * time.Second},
		{name: "bad environment", env: "soon", usage: true},
		{name: "zero", args: []string{"--timeout", "0s"}, usage: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(k string) string {
				if k == "DPE_TIMEOUT" {
					return tc.env
				}
				return ""
			}}
			_, g := newCommand("status", e)
			err := g.parseNone(tc.args)
			var ue usageError
			if tc.usage {
				if !errors.As(err, &ue) {
					t.Fatalf("err %v, want a usage error", err)
				}
				return
			}
			if err != nil || g.timeout != tc.want {
				t.Errorf("timeout %v (err %v), want %v", g.timeout, err, tc.want)
			}
		})
	}
	_, g := newCommand("processor", &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }})
	if !g.role {
		t.Error("processor is not a role: its calls would give up after --timeout")
	}
}

// TestReport: what a command's error prints and the exit code it gives.
func TestReport(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		code int
		want string // stderr, exactly
	}{
		{name: "success", err: nil, code: exitOK},
		{name: "help", err: errHelp, code: exitOK},
		{name: "usage", err: usagef("want exactly one job TYPE"), code: exitUsage, want: "dpe: want exactly one job TYPE\n"},
		{name: "field once, no plumbing", code: exitUsage,
			err: fmt.Errorf("POST /v1/jobs: %w", &client.APIError{Status: 422, Problem: wire.Problem{Title: "invalid input", Field: "type",
				Detail: `type: unknown job type "nosuch"; known: noop, util.copy`}}),
			want: "dpe: unknown job type \"nosuch\"; known: noop, util.copy (type)\n"},
		{name: "template faults, one a line", code: exitUsage,
			err: &client.APIError{Status: 422, Problem: wire.Problem{Title: "invalid template", Field: "job",
				Detail: "template bad: line 3: step \"a\": job: unknown job type\ntemplate bad: line 4: step \"a\": id: duplicate id",
				Errors: []wire.Issue{{Line: 3, Step: "a", Field: "job"}, {Line: 4, Step: "a", Field: "id"}}}},
			want: "dpe: template bad: line 3: step \"a\": job: unknown job type\n  template bad: line 4: step \"a\": id: duplicate id\n"},
		{name: "not found", code: exitUsage,
			err:  fmt.Errorf("GET /v1/jobs/9999: %w", &client.APIError{Status: 404, Problem: wire.Problem{Title: "not found", Detail: "job 9999 not found"}}),
			want: "dpe: job 9999 not found\n"},
		{name: "conflict is a runtime error", code: exitError,
			err:  &client.APIError{Status: 409, Problem: wire.Problem{Title: "conflict", Detail: "job 3 is already final"}},
			want: "dpe: job 3 is already final\n"},
		{name: "internal error", code: exitError,
			err:  &client.APIError{Status: 500, Problem: wire.Problem{Title: "internal error", Detail: "see the server log, request id x"}},
			want: "dpe: internal error: see the server log, request id x\n"},
		{name: "a path in --server", code: exitUsage,
			err: fmt.Errorf("GET /v1/status: %w", &client.APIError{Status: 404, URL: "http://127.0.0.1:8460/v1", Foreign: true,
				Problem: wire.Problem{Title: "Not Found", Detail: "404 page not found"}}),
			want: "dpe: http://127.0.0.1:8460/v1 answered 404 Not Found: no dpe API there; give --server the server's base URL without the path /v1: http://127.0.0.1:8460\n"},
		{name: "unreachable", code: exitNoServer,
			err: &client.RetryError{Method: "POST", Path: "/v1/jobs", Attempts: 20, Elapsed: 3 * time.Second,
				URLs: []string{"http://127.0.0.1:18999"}, Err: &url.Error{Op: "Post", URL: "http://127.0.0.1:18999/v1/jobs", Err: refused}},
			want: "dpe: cannot reach http://127.0.0.1:18999 (connection refused); gave up after 3s (--timeout, env DPE_TIMEOUT)\n"},
		{name: "database down till the end", code: exitError,
			err: &client.RetryError{Method: "GET", Path: "/v1/status", Attempts: 9, Elapsed: 30 * time.Second, URLs: []string{"http://a:1"},
				Err: &client.APIError{Status: 503, Problem: wire.Problem{Title: "core database unavailable", Detail: "sqlite: ping: disk I/O error"}}},
			want: "dpe: core database unavailable; gave up after 30s\n"},
		{name: "local lookup", code: exitUsage, err: fmt.Errorf("workflow instance r9 %w", model.ErrNotFound),
			want: "dpe: workflow instance r9 not found\n"},
		{name: "waited and failed: printed by the waiter", code: exitNotGreen, err: notGreenError{"job 4 ended failed"}},
		{name: "other", code: exitError, err: errors.New("read template x.yaml: permission denied"),
			want: "dpe: read template x.yaml: permission denied\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := report(&stderr, tc.err); code != tc.code {
				t.Errorf("exit %d, want %d", code, tc.code)
			}
			if stderr.String() != tc.want {
				t.Errorf("stderr\n%q\nwant\n%q", stderr.String(), tc.want)
			}
		})
	}
}

// TestRetryNotice: the notice comes once per call, when every server
// failed once, and says what failed and for how long it retries.
func TestRetryNotice(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	var stderr bytes.Buffer
	notice := retryNotice(&stderr, 1)
	for i := 1; i <= 3; i++ {
		notice(client.RetryInfo{URL: "http://127.0.0.1:18999", Attempt: i, Deadline: 30 * time.Second, Err: refused})
	}
	want := "dpe: cannot reach http://127.0.0.1:18999 (connection refused); retrying for up to 30s …\n"
	if stderr.String() != want {
		t.Errorf("notice %q, want %q", stderr.String(), want)
	}
	stderr.Reset()
	notice = retryNotice(&stderr, 2)
	notice(client.RetryInfo{URL: "http://a:1", Attempt: 1, Deadline: 30 * time.Second, Err: refused})
	if stderr.Len() != 0 {
		t.Errorf("notice after the first of two servers failed: %q", stderr.String())
	}
	notice(client.RetryInfo{URL: "http://b:1", Attempt: 2, Deadline: 30 * time.Second,
		Err: &client.APIError{Status: 503, Problem: wire.Problem{Title: "core database unavailable"}}})
	if want := "dpe: http://b:1 answered core database unavailable nor the other servers; retrying for up to 30s …\n"; stderr.String() != want {
		t.Errorf("notice %q, want %q", stderr.String(), want)
	}
}
