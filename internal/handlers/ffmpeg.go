package handlers

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/dpe-engine/dpe/internal/jobtype"
)

// ffTools are the paths of the ffmpeg and ffprobe programs.
type ffTools struct {
	ffmpeg, ffprobe string
}

// findFFmpeg looks ffmpeg and ffprobe up: the paths cfg gives, else the
// processor's PATH. The error names what is missing.
func findFFmpeg(cfg Config) (ffTools, error) {
	var t ffTools
	var missing []string
	for _, x := range []struct {
		name, given string
		dst         *string
	}{{"ffmpeg", cfg.FFmpeg, &t.ffmpeg}, {"ffprobe", cfg.FFprobe, &t.ffprobe}} {
		name := x.given
		if name == "" {
			name = x.name
		}
		p, err := exec.LookPath(name)
		if err != nil {
			missing = append(missing, fmt.Sprintf("%s not found (%v)", x.name, err))
			continue
		}
		*x.dst = p
	}
	if missing != nil {
		return ffTools{}, errors.New(strings.Join(missing, "; "))
	}
	return t, nil
}

// Unavailable returns the built-in job types that cannot run on this
// processor, each with the reason: the ffmpeg types when ffmpeg or ffprobe
// is missing. Builtins leaves them out; a processor announces them so that
// `dpe status` shows why it claims none of them.
func Unavailable(cfg Config) map[string]string {
	if _, err := findFFmpeg(cfg); err != nil {
		m := make(map[string]string, len(jobtype.FFmpegTypes))
		for _, typ := range jobtype.FFmpegTypes {
			m[typ] = err.Error()
		}
		return m
	}
	return nil
}

// ffRun runs one ffmpeg or ffprobe command and returns its stdout (at
// most maxOut bytes kept) and an error with the end of its stderr. argv[0]
// is the program's path; the rest are arguments built by the handler from
// validated params, never a shell string. The program runs in a process
// group of its own, killed (children included) when ctx ends or the
// program exits. progress, when not nil, receives stdout as it comes (the
// -progress pipe:1 report) and stdout is not kept.
func ffRun(ctx context.Context, argv []string, progress *ffProgress, maxOut int) ([]byte, error) {
	stdout, stderr := &capture{max: maxOut}, &capture{max: 0}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if progress != nil {
		cmd.Stdout = progress
	}
	cmd.WaitDelay = execWaitDelay
	setProcessGroup(cmd)
	err := cmd.Run()
	if cmd.Process != nil {
		_ = killProcessGroup(cmd) // leftovers; none is normal
	}
	prog := argv[0]
	if i := strings.LastIndexByte(prog, '/'); i >= 0 {
		prog = prog[i+1:]
	}
	switch {
	case err == nil:
		return stdout.head, nil
	case ctx.Err() != nil:
		return nil, ctxErr(ctx)
	case cmd.ProcessState == nil: // did not start
		return nil, fmt.Errorf("%s: %w", prog, err)
	case !cmd.ProcessState.Success():
		return nil, &ExitError{Program: prog, Code: cmd.ProcessState.ExitCode(),
			Status: cmd.ProcessState.String(), Stderr: stderr.lastBytes()}
	case errors.Is(err, exec.ErrWaitDelay):
		return stdout.head, nil
	}
	return nil, fmt.Errorf("%s: %w", prog, err)
}

// ffInput is how a resolved absolute path is given to ffmpeg: through the
// file: protocol, so that no part of a file name is read as another
// protocol ("http:", "concat:") or as an option.
func ffInput(path string) string { return "file:" + path }

// ffCommon are the arguments every ffmpeg run starts with: no banner, no
// reading of stdin, errors only on stderr, no interactive statistics.
var ffCommon = []string{"-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"}
