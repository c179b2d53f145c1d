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
	"time"

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
	timeout   time.Duration

	// role is true for the commands that run a role (up, server,
	// processor, ...): their calls keep retrying through outages, and
	// --timeout does not apply.
	role bool
	fs   *flag.FlagSet
	e    *env
}

// defaultTimeout is how long an interactive command waits for an
// unreachable server before it gives up (exit 4).
const defaultTimeout = 30 * time.Second

// roleCommands run for ever and ride out server outages.
var roleCommands = map[string]bool{
	"up": true, "server": true, "processor": true, "worker": true,
	"scheduler": true, "folderwatcher": true, "tablewatcher": true,
}

// globalFlags are the flags newCommand registers on every subcommand,
// with whether they take a value. They may also be given before the
// command (see hoistGlobals). --timeout is --server-timeout where the
// command has no --timeout of its own.
var globalFlags = map[string]bool{"server": true, "token": true, "o": true, "log-level": true, "timeout": true, "server-timeout": true}

// newCommand is the start every subcommand shares: a flag set named "dpe
// NAME" that reports bad flags as usage errors instead of exiting, with the
// global flags registered (--server, --token, -o, --log-level, --timeout,
// their defaults taken from DPE_SERVER, DPE_TOKEN, DPE_LOG_LEVEL and
// DPE_TIMEOUT). The
// subcommand adds its own flags to the set, then calls parse or parseNone,
// then client or logger.
func newCommand(name string, e *env) (*flag.FlagSet, *globals) {
	fs := flag.NewFlagSet("dpe "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	g := &globals{fs: fs, e: e, role: roleCommands[name]}
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
	g.timeout = defaultTimeout
	if v := e.getenv("DPE_TIMEOUT"); v != "" {
		// A bad value is reported by check, where it is a usage error.
		if err := (timeoutFlag{&g.timeout}).Set(v); err != nil {
			g.timeout = -1
		}
	}
	fs.Var(timeoutFlag{&g.timeout}, "server-timeout", "give up on an unreachable server after this long, exit 4 (env DPE_TIMEOUT; roles retry for ever); also --timeout where the command has no --timeout of its own")
	return fs, g
}

// timeoutFlag is a positive duration; a bare number is seconds.
type timeoutFlag struct{ d *time.Duration }

func (t timeoutFlag) String() string {
	if t.d == nil {
		return ""
	}
	return t.d.String()
}

func (t timeoutFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseFloat(s, 64)
		if nerr != nil {
			return fmt.Errorf("want a duration such as 30s or 2m, got %q", s)
		}
		d = time.Duration(n * float64(time.Second))
	}
	if d <= 0 {
		return fmt.Errorf("want a positive duration, got %q", s)
	}
	*t.d = d
	return nil
}

// parse parses the subcommand's arguments (flags may follow positional
// arguments) and checks the global flags. It returns the positional
// arguments; -h gives errHelp, bad flags a usage error.
func (g *globals) parse(args []string) ([]string, error) {
	// --timeout is the global --server-timeout unless the command has a
	// --timeout of its own (job submit: the job's time limit).
	if g.fs.Lookup("timeout") == nil {
		g.fs.Var(timeoutFlag{&g.timeout}, "timeout", "give up on an unreachable server after this long, exit 4 (env DPE_TIMEOUT; roles retry for ever)")
	}
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
	if g.timeout <= 0 {
		return usagef("DPE_TIMEOUT: want a positive duration such as 30s, got %q", g.e.getenv("DPE_TIMEOUT"))
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
// usage error. An interactive command's calls give up after --timeout
// and say on stderr, once per call, that a server cannot be reached;
// a role's calls keep the client's defaults (its loops retry for ever).
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
	cfg := client.Config{URLs: urls, Token: tok, TLS: tc, Log: g.logger()}
	if !g.role {
		cfg.Deadline = g.timeout
		cfg.OnRetry = retryNotice(g.e.stderr, len(urls))
	}
	c, err := client.New(cfg)
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

// retryNotice returns the client's OnRetry hook of an interactive
// command: when every server of a call has failed once, it says so on
// stderr, once per call, so a dead or wrong --server is reported at once
// rather than after the call gives up.
func retryNotice(stderr io.Writer, urls int) func(client.RetryInfo) {
	return func(ri client.RetryInfo) {
		if ri.Attempt != max(urls, 1) {
			return
		}
		what := "cannot reach " + ri.URL + " (" + client.Reason(ri.Err) + ")"
		var ae *client.APIError
		if errors.As(ri.Err, &ae) {
			what = ri.URL + " answered " + problemText(ae)
		}
		if urls > 1 {
			what += " nor the other servers"
		}
		fmt.Fprintf(stderr, "dpe: %s; retrying for up to %s …\n", what, ri.Deadline.Round(time.Second))
	}
}
