package main

import (
	"bytes"
	"errors"
	"slices"
	"testing"
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
