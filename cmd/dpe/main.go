// Command dpe is the one binary of the dpe processing engine: a subcommand
// per role (server, processor, ...) and the admin CLI. Each subcommand only
// parses, wires and runs; the work lives in internal/. Every subcommand
// starts with newCommand (the global flags of DESIGN §9); the role
// commands and `dpe up` run their roles under internal/supervisor, which
// stops them in reverse order on SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK       = 0
	exitError    = 1 // the command failed
	exitUsage    = 2 // bad flags or arguments; nothing was done
	exitNotGreen = 3 // --wait: the job or instance ended in a state other than succeeded
	exitNoServer = 4 // no server could be reached within --timeout
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what subcommands share: output streams and the environment.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

var commands = map[string]command{
	"up":            {"run server and processor in one process on embedded SQLite", runUp},
	"server":        {"run a server on a core database", runServer},
	"processor":     {"run a job processor", runProcessor},
	"worker":        {"run a workflow worker (standby or concurrent)", runWorker},
	"template":      {"import, export, list and delete workflow templates", runTemplate},
	"workflow":      {"start, list, show, follow the logs of, cancel, re-prioritise, retry and wait for workflow instances", runWorkflow},
	"scheduler":     {"run the schedules of a config file (standby or concurrent)", runScheduler},
	"folderwatcher": {"run the folder watchers of a config file (standby or concurrent)", runFolderWatcher},
	"tablewatcher":  {"run the table watchers of a config file (standby or concurrent)", runTableWatcher},
	"schedule":      {"fire a schedule now: schedule fire NAME --config FILE", runSchedule},
	"locations":     {"check the roots of the configured locations: locations check --config FILE", runLocations},
	"trigger":       {"list triggers, their active copy, last event and error; show records; pause, resume", runTrigger},
	"job":           {"submit, list, show, cancel, re-prioritise and retry jobs", runJob},
	"type":          {"list job types and set their cluster-wide limits", runType},
	"token":         {"create, list and revoke API tokens: token create --role ROLE --name NAME", runToken},
	"audit":         {"list the audit trail of mutating API calls: audit list [--since 24h] [--principal NAME] [--route ROUTE]", runAudit},
	"alert":         {"list alerts and their notifications; send a test notification to every receiver", runAlert},
	"status":        {"show the server, core database, processors and job counts", runStatus},
	"version":       {"print the version", runVersion},
}

func main() {
	ctx, stop := signalContext()
	defer stop()
	e := &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	os.Exit(run(ctx, e, os.Args[1:]))
}

// signalContext is cancelled by the first SIGINT or SIGTERM (graceful stop);
// a second signal exits at once.
func signalContext() (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-ch
		cancel()
		<-ch
		fmt.Fprintln(os.Stderr, "dpe: second signal, exiting now")
		os.Exit(exitError)
	}()
	return ctx, func() { signal.Stop(ch); cancel() }
}

// hangups delivers a value for each SIGHUP until ctx ends (a server with
// TLS re-reads its certificate then). Only servers with a certificate ask:
// elsewhere SIGHUP keeps its default action.
func hangups(ctx context.Context) <-chan struct{} {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case out <- struct{}{}:
				default: // one pending reload reads the latest files anyway
				}
			}
		}
	}()
	return out
}

func run(ctx context.Context, e *env, args []string) int {
	args, err := hoistGlobals(args)
	if err != nil {
		fmt.Fprintf(e.stderr, "dpe: %v\n\n", err)
		usage(e.stderr)
		return exitUsage
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
		usage(e.stdout)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "dpe: unknown command %q\n\n", args[0])
		usage(e.stderr)
		return exitUsage
	}
	return report(e.stderr, cmd.run(ctx, e, args[1:]))
}

// hoistGlobals moves global flags given before the command to the end of
// the arguments, where the subcommand's flag set parses them with its own
// (flags may follow positional arguments): `dpe -o json job show 1` is
// `dpe job show 1 -o json`. An unknown flag before the command is a
// usage error.
func hoistGlobals(args []string) ([]string, error) {
	var moved []string
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "-h" || a == "-help" || a == "--help" || !strings.HasPrefix(a, "-") || a == "-" {
			break
		}
		if a == "--" {
			i++
			break
		}
		name, _, inline := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takesValue, ok := globalFlags[name]
		if !ok {
			return nil, usagef("unknown flag %s before the command; global flags are --server, --token, -o, --log-level and --timeout (--server-timeout)", a)
		}
		if name == "timeout" {
			// Before the command, --timeout is always the global one,
			// even for a command with a --timeout of its own.
			a = strings.Replace(a, "timeout", "server-timeout", 1)
		}
		moved = append(moved, a)
		if takesValue && !inline {
			if i+1 >= len(args) {
				return nil, usagef("flag %s needs a value", a)
			}
			i++
			moved = append(moved, args[i])
		}
	}
	if i >= len(args) {
		if len(moved) > 0 {
			return nil, usagef("no command after the flags %s", strings.Join(moved, " "))
		}
		return nil, nil
	}
	return append(append([]string{}, args[i:]...), moved...), nil
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: dpe [global flags] COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
	fmt.Fprint(w, `
global flags (before or after the command):
  --server URL[,URL...]  the server's base URL(s), e.g. http://127.0.0.1:8460 (env DPE_SERVER)
  --token TOKEN          bearer token (env DPE_TOKEN)
  -o table|json          output format
  --log-level LEVEL      debug, info, warn or error (env DPE_LOG_LEVEL)
  --timeout DURATION     give up on an unreachable server after this long, default 30s
                         (env DPE_TIMEOUT; the roles up, server, processor, worker and
                         the trigger roles keep retrying for ever). After job submit and
                         locations check, whose --timeout is their own, say --server-timeout.

exit codes:
  0  success
  1  the server or the command failed (a server error, a refused state change)
  2  bad usage or bad input: flags, arguments, a name or id that does not exist,
     input the server refused as invalid; nothing was done
  3  --wait: the job or workflow instance ended other than succeeded
  4  the server could not be reached within --timeout

run 'dpe COMMAND -h' for a command's flags
`)
}

// usageError marks bad flags or arguments (exit 2).
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// notGreenError marks a waited-for job or instance that did not succeed
// (exit 3). Whoever returns it has printed the outcome, error included:
// run prints nothing more, so a failure reads once.
type notGreenError struct{ msg string }

func (n notGreenError) Error() string { return n.msg }

func runVersion(_ context.Context, e *env, _ []string) error {
	fmt.Fprintln(e.stdout, "dpe", version)
	return nil
}
