// Command dpe is the one binary of the dpe processing engine: a subcommand
// per role (server, processor, ...) and the admin CLI. Each subcommand only
// parses, wires and runs; the work lives in internal/. Every subcommand
// starts with newCommand (the global flags of DESIGN §9); the role
// commands and `dpe up` run their roles under internal/supervisor, which
// stops them in reverse order on SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

// Exit codes.
const (
	exitOK       = 0
	exitError    = 1 // the command failed
	exitUsage    = 2 // bad flags or arguments; nothing was done
	exitNotGreen = 3 // --wait: the job or instance ended in a state other than succeeded
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
	"workflow":      {"start, list, show, cancel, re-prioritise and wait for workflow instances", runWorkflow},
	"scheduler":     {"run the schedules of a config file (standby or concurrent)", runScheduler},
	"folderwatcher": {"run the folder watchers of a config file (standby or concurrent)", runFolderWatcher},
	"tablewatcher":  {"run the table watchers of a config file (standby or concurrent)", runTableWatcher},
	"schedule":      {"fire a schedule now: schedule fire NAME --config FILE", runSchedule},
	"locations":     {"check the roots of the configured locations: locations check --config FILE", runLocations},
	"trigger":       {"list triggers, their active copy, last event and error; show records", runTrigger},
	"job":           {"submit, list, show, cancel and re-prioritise jobs", runJob},
	"type":          {"list job types and set their cluster-wide limits", runType},
	"token":         {"create, list and revoke API tokens: token create --role ROLE --name NAME", runToken},
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

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
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
	err := cmd.run(ctx, e, args[1:])
	var ue usageError
	var ng notGreenError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(e.stderr, "dpe %s: %v\n", args[0], err)
		return exitUsage
	case errors.As(err, &ng):
		fmt.Fprintf(e.stderr, "dpe %s: %v\n", args[0], err)
		return exitNotGreen
	case errors.Is(err, errHelp):
		return exitOK
	default:
		fmt.Fprintf(e.stderr, "dpe %s: %v\n", args[0], err)
		return exitError
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: dpe COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nglobal flags: --server URL[,URL...] (env DPE_SERVER), --token (env DPE_TOKEN), -o table|json\nrun 'dpe COMMAND -h' for a command's flags")
}

// usageError marks bad flags or arguments (exit 2).
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// notGreenError marks a waited-for job or instance that did not succeed.
type notGreenError struct{ msg string }

func (n notGreenError) Error() string { return n.msg }

func runVersion(_ context.Context, e *env, _ []string) error {
	fmt.Fprintln(e.stdout, "dpe", version)
	return nil
}
