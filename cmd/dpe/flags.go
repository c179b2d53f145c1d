package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/config"
	"github.com/dpe-engine/dpe/internal/server"
)

const version = server.Version

// errHelp is returned when -h was asked: usage was printed, exit 0.
var errHelp = errors.New("help shown")

// globals are the flags every subcommand takes (DESIGN §9), with the flag
// set and environment of the subcommand that parses them.
type globals struct {
	server    string
	token     string
	tokenFile string
	ca        string // PEM file of the CAs that sign the server's certificate
	cert, key string // client certificate (mutual TLS)
	output    string
	logLevel  string

	fs *flag.FlagSet
	e  *env
}

// newCommand is the start every subcommand shares: a flag set named "dpe
// NAME" that reports bad flags as usage errors instead of exiting, with the
// global flags registered (--server, --token, -o, --log-level, their
// defaults taken from DPE_SERVER, DPE_TOKEN and DPE_LOG_LEVEL). The
// subcommand adds its own flags to the set, then calls parse or parseNone,
// then client or logger.
func newCommand(name string, e *env) (*flag.FlagSet, *globals) {
	fs := flag.NewFlagSet("dpe "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	g := &globals{fs: fs, e: e}
	def := e.getenv("DPE_SERVER")
	if def == "" {
		def = "http://127.0.0.1:8460"
	}
	fs.StringVar(&g.server, "server", def, "server URL(s), comma-separated (env DPE_SERVER)")
	fs.StringVar(&g.token, "token", e.getenv("DPE_TOKEN"), "bearer token (env DPE_TOKEN; prefer --token-file: a flag shows in ps)")
	fs.StringVar(&g.tokenFile, "token-file", e.getenv("DPE_TOKEN_FILE"), "file holding the bearer token (env DPE_TOKEN_FILE)")
	fs.StringVar(&g.ca, "ca", e.getenv("DPE_CA"), "PEM file of the CA that signs the server's certificate (env DPE_CA; default: system roots)")
	fs.StringVar(&g.cert, "cert", e.getenv("DPE_CERT"), "client certificate for mutual TLS (env DPE_CERT)")
	fs.StringVar(&g.key, "key", e.getenv("DPE_KEY"), "client certificate's key (env DPE_KEY)")
	fs.StringVar(&g.output, "o", "table", "output: table or json")
	lvl := e.getenv("DPE_LOG_LEVEL")
	if lvl == "" {
		lvl = "info"
	}
	fs.StringVar(&g.logLevel, "log-level", lvl, "log level: debug, info, warn, error (env DPE_LOG_LEVEL)")
	return fs, g
}

// parse parses the subcommand's arguments (flags may follow positional
// arguments) and checks the global flags. It returns the positional
// arguments; -h gives errHelp, bad flags a usage error.
func (g *globals) parse(args []string) ([]string, error) {
	pos, err := parse(g.fs, g.e.stderr, args)
	if err != nil {
		return nil, err
	}
	if err := g.check(); err != nil {
		return nil, err
	}
	return pos, nil
}

// parseNone is parse for a subcommand that takes no positional argument.
func (g *globals) parseNone(args []string) error {
	pos, err := g.parse(args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q", pos[0])
	}
	return nil
}

func (g *globals) check() error {
	if g.output != "table" && g.output != "json" {
		return usagef("-o: want table or json, got %q", g.output)
	}
	switch g.logLevel {
	case "debug", "info", "warn", "error":
	default:
		return usagef("--log-level: want debug, info, warn or error, got %q", g.logLevel)
	}
	if g.token == "" && g.tokenFile != "" {
		t, err := readTokenFile(g.tokenFile)
		if err != nil {
			return usagef("--token-file: %v", err)
		}
		g.token = t
	}
	if (g.cert == "") != (g.key == "") {
		return usagef("--cert and --key go together")
	}
	return nil
}

func (g *globals) json() bool { return g.output == "json" }

// logger logs text to stderr at the --log-level.
func (g *globals) logger() *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(g.logLevel))
	return slog.New(slog.NewTextHandler(g.e.stderr, &slog.HandlerOptions{Level: lvl}))
}

// client talks to the --server URLs with the --token; a bad URL is a
// usage error.
func (g *globals) client() (*client.Client, error) {
	var urls []string
	for _, u := range strings.Split(g.server, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	tok := g.token
	if tok == "" {
		tok = localToken(urls) // the token of a dpe up on this machine
	}
	tc, err := g.tlsConfig()
	if err != nil {
		return nil, err
	}
	c, err := client.New(client.Config{URLs: urls, Token: tok, TLS: tc, Log: g.logger()})
	if err != nil {
		return nil, usagef("--server: %v", err)
	}
	return c, nil
}

// loadConfig loads a configuration file; a bad file is a usage error.
func loadConfig(path string) (*config.File, error) {
	f, err := config.Load(path)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return f, nil
}

// parse parses args, mapping -h to errHelp and bad flags to usage errors.
// Flags may follow positional arguments.
func parse(fs *flag.FlagSet, stderr io.Writer, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(stderr)
				fs.Usage()
				return nil, errHelp
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// kvFlag collects repeated KEY=VALUE flags.
type kvFlag struct {
	name string
	m    map[string]string
	keys []string // in the order given
}

func newKV(name string) *kvFlag { return &kvFlag{name: name, m: map[string]string{}} }

func (k *kvFlag) String() string {
	parts := make([]string, 0, len(k.keys))
	for _, key := range k.keys {
		parts = append(parts, key+"="+k.m[key])
	}
	return strings.Join(parts, ",")
}

func (k *kvFlag) Set(s string) error {
	key, val, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if _, dup := k.m[key]; dup {
		return fmt.Errorf("%s given twice", key)
	}
	k.m[key] = val
	k.keys = append(k.keys, key)
	return nil
}

// ints converts the values to positive integers (quotas).
func (k *kvFlag) ints() (map[string]int, error) {
	out := make(map[string]int, len(k.m))
	for key, v := range k.m {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return nil, usagef("--%s %s=%s: want a positive integer", k.name, key, v)
		}
		out[key] = n
	}
	return out, nil
}

// listFlag collects repeated values.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
