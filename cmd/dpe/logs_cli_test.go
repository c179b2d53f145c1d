package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/model"
)

// logsTemplate logs, runs a noop job that writes a line to its own log
// and sleeps (so that --follow has something to wait for), logs again,
// and fails when asked to.
const logsTemplate = `name: logdemo
args:
  fail: {type: bool, default: false}
steps:
  - log: "starting ${{ args.fail }}"
  - id: work
    job: noop
    params: {sleep: 1500ms, log: "handler says hi"}
  - log: "work done"
  - id: verdict
    if: "args.fail"
    then:
      - fail: "asked to fail"
`

// TestWorkflowLogsCLI: against dpe up, a workflow's log steps and its
// job's handler lines are stored and shown: `workflow logs --follow`
// prints them in order and exits when the instance ends (0, or 3 when it
// failed); `workflow show` prints each line once, in its log section;
// `job show` prints the job's own line.
func TestWorkflowLogsCLI(t *testing.T) {
	u := startUp(t)
	dpe := u.dpe
	dir, up := u.dir, u.up
	tpl := filepath.Join(dir, "logdemo.yaml")
	if err := os.WriteFile(tpl, []byte(logsTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := dpe("template", "import", tpl); code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}

	if out, errOut, code := dpe("workflow", "start", "logdemo", "--name", "ok1"); code != 0 {
		t.Fatalf("start: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code := dpe("workflow", "logs", "ok1", "--follow")
	if code != 0 {
		t.Fatalf("logs --follow: exit %d\n%s%s\n%s", code, out, errOut, up.output())
	}
	want := []string{"INFO  starting false", "handler says hi", "INFO  work done"}
	last := -1
	for _, w := range want {
		i := strings.Index(out, w)
		if i < 0 || i < last || strings.Count(out, w) != 1 {
			t.Fatalf("logs --follow: want %q once, in order, got\n%s", want, out)
		}
		last = i
	}
	if !strings.Contains(out, "job ") {
		t.Errorf("the handler's line does not name its job:\n%s", out)
	}

	out, _, code = dpe("workflow", "show", "ok1")
	if code != 0 || !strings.Contains(out, "\nlog\n") {
		t.Fatalf("workflow show: exit %d, no log section\n%s", code, out)
	}
	for _, w := range want {
		if strings.Count(out, strings.TrimPrefix(w, "INFO  ")) != 1 {
			t.Errorf("workflow show prints %q other than once:\n%s", w, out)
		}
	}
	// -o json: one line a line; the handler's names its job.
	out, _, code = dpe("workflow", "logs", "ok1", "-o", "json")
	var jobID int64
	rows := strings.Split(strings.TrimSpace(out), "\n")
	for _, row := range rows {
		var l model.LogLine
		if err := json.Unmarshal([]byte(row), &l); err != nil {
			t.Fatalf("logs -o json: %v in %q", err, row)
		}
		if l.Message == "handler says hi" {
			jobID = l.JobID
		}
	}
	if code != 0 || len(rows) != 3 || jobID == 0 {
		t.Fatalf("logs -o json: exit %d, want 3 lines, one of a job\n%s", code, out)
	}
	out, _, code = dpe("job", "show", strconv.FormatInt(jobID, 10))
	if code != 0 || strings.Count(out, "INFO  handler says hi") != 1 || strings.Contains(out, "work done") {
		t.Fatalf("job show %d: exit %d, want its own line only\n%s", jobID, code, out)
	}

	if out, errOut, code := dpe("workflow", "start", "logdemo", "--name", "bad1", "--arg", "fail=true"); code != 0 {
		t.Fatalf("start: exit %d\n%s%s", code, out, errOut)
	}
	out, errOut, code = dpe("workflow", "logs", "bad1", "--follow")
	if code != exitNotGreen || !strings.Contains(out, "starting true") || !strings.Contains(out, "work done") || !strings.Contains(errOut, "failed") {
		t.Fatalf("logs --follow of a failing workflow: exit %d, want %d\n%s%s", code, exitNotGreen, out, errOut)
	}
	// Without --follow: the lines so far, exit 0 whatever the state.
	if out, _, code = dpe("workflow", "logs", "bad1"); code != 0 || !strings.Contains(out, "work done") {
		t.Fatalf("logs: exit %d\n%s", code, out)
	}
}
