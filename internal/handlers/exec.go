package handlers

import (
	"context"
	"errors"
	"fmt"

	"os/exec"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/model"
)

// Output kept per stream when max_output is not given.
const defaultMaxOutput = 64 << 10

// execWaitDelay bounds how long a finished (or killed) program's leftover
// children may hold its output pipes open before Wait gives up on them.
const execWaitDelay = 2 * time.Second

// errExecTimeout is the cancel cause of an exec run that hit its timeout.
var errExecTimeout = errors.New("exec timeout")

// execHandler runs exec.
type execHandler struct {
	cfg  Config
	spec jobtype.Spec
}

type execParams struct {
	Argv      []string       `json:"argv"`
	Dir       string         `json:"dir"`
	Env       []string       `json:"env"`
	Timeout   model.Duration `json:"timeout"`
	MaxOutput int            `json:"max_output"`
}

// execResult is the result of exec.
type execResult struct {
	ExitCode    int            `json:"exit_code"` // -1: killed by a signal
	Stdout      string         `json:"stdout"`    // the first max_output bytes
	Stderr      string         `json:"stderr"`
	Truncated   bool           `json:"truncated"` // stdout or stderr was longer
	StdoutBytes int64          `json:"stdout_bytes"`
	StderrBytes int64          `json:"stderr_bytes"`
	Duration    model.Duration `json:"duration"`
}

// ExitError is the error of an exec job whose program exited with a
// non-zero status or was killed. It is retryable.
type ExitError struct {
	Program string // argv[0]
	Code    int    // exit status; -1 when killed by a signal
	Status  string // "exit status 3", "signal: killed"
	Stderr  string // the last bytes of stderr
}

// Error gives the status and the end of stderr.
func (e *ExitError) Error() string {
	msg := fmt.Sprintf("exec: %s: %s", e.Program, e.Status)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// Run starts argv without a shell and waits for it. The program runs in a
// process group of its own, which is killed, children included, when ctx
// ends, when the timeout passes, and when the program exits (a job's
// processes do not outlive it). Only programs of the processor's
// ExecPolicy run, in a clean environment (see ExecPolicy). A non-zero exit
// returns the result along with an *ExitError.
func (h *execHandler) Run(ctx context.Context, t Task) (any, error) {
	var p execParams
	if err := decode(h.spec, t.Params, &p); err != nil {
		return nil, err
	}
	if p.Dir != "" {
		var err error
		if p.Dir, err = h.cfg.resolve("dir", p.Dir); err != nil {
			return nil, err
		}
	}
	prog, err := h.cfg.Exec.program(p.Argv[0], p.Dir)
	if err != nil {
		return nil, err
	}
	env, err := h.cfg.Exec.environ(p.Env)
	if err != nil {
		return nil, err
	}
	if p.MaxOutput == 0 {
		p.MaxOutput = defaultMaxOutput
	}

	runCtx := ctx
	if p.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeoutCause(ctx, p.Timeout.D(), errExecTimeout)
		defer cancel()
	}
	stdout, stderr := &capture{max: p.MaxOutput}, &capture{max: p.MaxOutput}
	cmd := exec.CommandContext(runCtx, prog, p.Argv[1:]...)
	cmd.Args[0] = p.Argv[0]
	cmd.Dir = p.Dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.WaitDelay = execWaitDelay
	setProcessGroup(cmd)

	start := h.cfg.Clock.Now()
	err = cmd.Run()
	if cmd.Process != nil {
		_ = killProcessGroup(cmd) // leftovers of a program that exited; none is normal
	}
	res := execResult{
		Stdout:      strings.ToValidUTF8(string(stdout.head), "\uFFFD"),
		Stderr:      strings.ToValidUTF8(string(stderr.head), "\uFFFD"),
		Truncated:   stdout.truncated() || stderr.truncated(),
		StdoutBytes: stdout.total,
		StderrBytes: stderr.total,
		Duration:    model.Duration(h.cfg.Clock.Now().Sub(start)),
	}
	if cmd.ProcessState != nil {
		res.ExitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case err == nil: // done, even if ctx ended in the meantime
		return res, nil
	case ctx.Err() != nil:
		return res, fmt.Errorf("exec: %s: %w", p.Argv[0], ctxErr(ctx))
	case runCtx.Err() != nil:
		return res, fmt.Errorf("exec: %s: timed out after %s", p.Argv[0], p.Timeout.D())
	case cmd.ProcessState == nil: // did not start
		return nil, fmt.Errorf("exec: %w", fsErr(err))
	case !cmd.ProcessState.Success():
		return res, &ExitError{Program: p.Argv[0], Code: res.ExitCode, Status: cmd.ProcessState.String(), Stderr: stderr.lastBytes()}
	case errors.Is(err, exec.ErrWaitDelay):
		h.cfg.Log.Warn("exec: program exited but its children kept its output open; output may be cut",
			"job", t.ID, "program", p.Argv[0])
	default:
		return res, fmt.Errorf("exec: %s: %w", p.Argv[0], err)
	}
	return res, nil
}
