package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
)

// showcaseTemplate has every block kind, ids that sort alphabetically
// against the run order, log steps, and a multi-line error.
const showcaseTemplate = `
name: showcase
args:
  fail:
    type: bool
    default: false
steps:
  - id: zeta
    job: noop
  - id: hello
    log: "starting ${{ instance.name }}"
  - id: check
    if: "true"
    then:
      - id: said
        log: "then branch taken"
  - id: each
    foreach: '["a.wav", "b.wav"]'
    as: file
    do:
      - id: work
        job: noop
      - id: done
        log: "did ${{ file }}"
  - id: both
    parallel:
      - id: right
        job: noop
      - id: inner
        sequence:
          - id: left
            log: "left side"
  - id: guard
    try:
      - id: boom
        fail: "first line of the failure\nsecond line of the failure, which goes on and on, well past the width of the table, so that it has to wrap"
    catch:
      - id: caught
        log: "caught ${{ error.step }}"
  - id: sub
    workflow: tiny
  - id: alpha
    if: "args.fail"
    then:
      - id: bad
        fail: "asked to fail:\nline two of the reason"
`

const tinyTemplate = `
name: tiny
steps:
  - id: whisper
    log: "from the child"
`

const slowTemplate = `
name: slow
steps:
  - id: nap
    job: noop
    params: {sleep: 60s}
`

// TestProgressAndShowCLI (issue 12, findings 8 and 9): --wait on a
// non-terminal writes plain state lines, no frames, and the real final
// state of failed and canceled runs; job submit --wait shows the job's
// progress; workflow show prints the steps in run order as a tree with
// start, duration, job, log lines, and a multi-line error wrapped under
// its step.
func TestProgressAndShowCLI(t *testing.T) {
	u := startUp(t)
	dpe := u.dpe
	dir, srv, up := u.dir, u.url, u.up
	for _, f := range [][2]string{{"tiny.yaml", tinyTemplate}, {"showcase.yaml", showcaseTemplate}, {"slow.yaml", slowTemplate}} {
		name, src := f[0], f[1]
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, errOut, code := dpe("template", "import", filepath.Join(dir, name)); code != 0 {
			t.Fatalf("import %s: exit %d\n%s%s", name, code, out, errOut)
		}
	}
	noFrames := func(what, errOut string) {
		t.Helper()
		if strings.Contains(errOut, "\r") || strings.Contains(errOut, "[#") || strings.Contains(errOut, "|█") {
			t.Fatalf("%s: progress frames on a non-terminal stderr:\n%q", what, errOut)
		}
	}

	// Succeeded: state lines, then the final state with its duration.
	out, errOut, code := dpe("workflow", "start", "showcase", "--name", "ok", "--wait")
	if code != 0 {
		t.Fatalf("showcase: exit %d\n%s%s", code, out, errOut)
	}
	noFrames("succeeded", errOut)
	okID := regexp.MustCompile(`workflow (\d+) ok succeeded`).FindStringSubmatch(out)
	if okID == nil {
		t.Fatalf("showcase outcome:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^workflow `+okID[1]+` running \d+%: step \S+`).MatchString(errOut) ||
		!regexp.MustCompile(`(?m)^workflow `+okID[1]+` succeeded in [0-9.]+m?s$`).MatchString(errOut) {
		t.Fatalf("succeeded: no state lines on stderr:\n%s", errOut)
	}

	// Failed: the real final state, never a full bar.
	out, errOut, code = dpe("workflow", "start", "showcase", "--name", "bad", "--arg", "fail=true", "--wait")
	if code != exitNotGreen {
		t.Fatalf("failing showcase: exit %d, want %d\n%s%s", code, exitNotGreen, out, errOut)
	}
	noFrames("failed", errOut)
	if !regexp.MustCompile(`(?m)^workflow \d+ failed after [0-9.]+m?s$`).MatchString(errOut) ||
		strings.Contains(errOut, "100%") || strings.Contains(errOut, "succeeded") {
		t.Fatalf("failed run, stderr:\n%s", errOut)
	}

	// Canceled while waited for: the wait ends with the canceled state.
	wait := exec.Command(dpeBinary(t), "workflow", "start", "slow", "--name", "nap", "--wait", "--server", srv)
	var waitOut, waitErr bytes.Buffer
	wait.Stdout, wait.Stderr = &waitOut, &waitErr
	if err := wait.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- wait.Wait() }()
	t.Cleanup(func() {
		_ = wait.Process.Kill()
	})
	eventually.NoError(t, 30*time.Second, func() error {
		out, _, _ := dpe("workflow", "show", "nap", "-o", "json")
		var d model.InstanceDetail
		if err := json.Unmarshal([]byte(out), &d); err != nil {
			return err
		}
		for _, s := range d.Steps {
			if s.ID == "nap" && s.JobID != 0 {
				return nil
			}
		}
		return os.ErrNotExist
	}, "the slow workflow to run its job")
	if out, errOut, code := dpe("workflow", "cancel", "nap"); code != 0 {
		t.Fatalf("cancel: exit %d\n%s%s", code, out, errOut)
	}
	select {
	case err := <-waited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != exitNotGreen {
			t.Fatalf("canceled wait: %v, want exit %d\n%s%s", err, exitNotGreen, waitOut.String(), waitErr.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("wait did not end after the cancel:\n%s", waitErr.String())
	}
	noFrames("canceled", waitErr.String())
	if !regexp.MustCompile(`(?m)^workflow \d+ running 0%: step nap$`).MatchString(waitErr.String()) ||
		!regexp.MustCompile(`(?m)^workflow \d+ canceled after [0-9.]+m?s$`).MatchString(waitErr.String()) ||
		strings.Contains(waitErr.String(), "100%") {
		t.Fatalf("canceled run, stderr:\n%s", waitErr.String())
	}

	// job submit --wait shows the job's progress and message.
	out, errOut, code = dpe("job", "submit", "noop", "--param", "sleep=2s", "--wait")
	jobID := regexp.MustCompile(`job (\d+) succeeded`).FindStringSubmatch(out)
	if code != 0 || jobID == nil {
		t.Fatalf("noop job: exit %d\n%s%s", code, out, errOut)
	}
	noFrames("job", errOut)
	if !regexp.MustCompile(`(?m)^job \d+ running [1-9]\d%: slept \S+ of 2s$`).MatchString(errOut) ||
		!regexp.MustCompile(`(?m)^job \d+ succeeded in [0-9.]+s$`).MatchString(errOut) {
		t.Fatalf("job progress, stderr:\n%s", errOut)
	}

	// workflow show: run order, tree, log lines, the error wrapped.
	out, errOut, code = dpe("workflow", "show", "bad")
	if code != 0 {
		t.Fatalf("show: exit %d\n%s%s", code, out, errOut)
	}
	steps := out[strings.Index(out, "\nsteps\n")+len("\nsteps\n"):]
	// The instance's stored log follows the tree; its lines are not
	// repeated as notes in the tree.
	logSection := ""
	if i := strings.Index(steps, "\n\nlog\n"); i >= 0 {
		steps, logSection = steps[:i+1], steps[i+len("\n\nlog\n"):]
	}
	var rows []string // the step column of each row, tree lines kept
	for _, l := range strings.Split(strings.TrimRight(steps, "\n"), "\n")[1:] {
		cells := regexp.MustCompile(`^([│├└─ ]*)(\S+(?: \S+\.wav)?)\s+(job|log|if|foreach|item|parallel|sequence|try|fail|workflow)\s+(\S+)\s+((?:\d{4}-\d\d-\d\d )?\d\d:\d\d:\d\d\.\d{3})\s+(\S+)\s+(-|\d+)$`).FindStringSubmatch(l)
		if cells == nil {
			// Not a row: a note, indented under the tree.
			if !regexp.MustCompile(`^[│ ]+ (log|error|job|runs): |^[│ ]{10,}\S`).MatchString(l) {
				t.Fatalf("line is neither a row nor an indented note: %q\n%s", l, out)
			}
			continue
		}
		rows = append(rows, strings.TrimRight(cells[1]+cells[2], " "))
		if cells[3] == "job" && cells[7] == "-" {
			t.Fatalf("job step without job id: %q", l)
		}
	}
	want := []string{
		"zeta", "hello", "check", "└─ said",
		"each", "├─ [0] a.wav", "│  ├─ work", "│  └─ done", "└─ [1] b.wav", "   ├─ work", "   └─ done",
		"both", "├─ right", "└─ inner", "   └─ left",
		"guard", "├─ boom", "└─ caught",
		"sub", "└─ whisper",
		"alpha", "└─ bad",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Fatalf("steps not in run order as a tree:\ngot\n%s\nwant\n%s\n\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"), out)
	}
	for _, w := range []string{"starting bad", "then branch taken", "did a.wav", "did b.wav", "left side", "caught boom"} {
		if !strings.Contains(logSection, "INFO  "+w+"\n") || strings.Count(out, w) != 1 {
			t.Fatalf("show: %q not once, in the log section:\n%s", w, out)
		}
	}
	for _, w := range []string{
		"│  runs: workflow ", "      log: from the child\n",
		"│     error: first line of the failure\n│            second line of the failure",
		"      error: asked to fail:\n             line two of the reason\n",
	} {
		if !strings.Contains(steps, w) {
			t.Fatalf("show lacks %q:\n%s", w, out)
		}
	}
	// Every line fits the width the CLI wraps to off a terminal.
	for _, l := range strings.Split(out, "\n") {
		if n := len([]rune(l)); n > textWidth {
			t.Fatalf("line of %d runes, wider than %d: %q", n, textWidth, l)
		}
	}
	// -o json keeps its shape.
	out, _, code = dpe("workflow", "show", "bad", "-o", "json")
	var raw map[string]json.RawMessage
	if code != 0 || json.Unmarshal([]byte(out), &raw) != nil || raw["instance"] == nil || raw["steps"] == nil {
		t.Fatalf("show -o json: exit %d\n%s", code, out)
	}

	// job show: attempts, processor, params, result readably.
	out, _, code = dpe("job", "show", jobID[1])
	for _, w := range []string{"attempts   1 of 3\n", "processor  processor@", "params\n  sleep  2s\n", "result\n  slept  2s\n"} {
		if code != 0 || !strings.Contains(out, w) {
			t.Fatalf("job show: exit %d, lacks %q:\n%s", code, w, out)
		}
	}
	if err := up.stop(30 * time.Second); err != nil {
		t.Fatalf("dpe up did not stop cleanly: %v", err)
	}
}
