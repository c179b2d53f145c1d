package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// retryTemplate fails at its checksum step while the file is missing;
// its first step is a job that must not run again on a retry.
const retryTemplate = `name: retryable
args:
  path: {type: string, required: true}
steps:
  - {id: first, job: noop}
  - id: sum
    job: util.checksum
    params: {path: "${{ args.path }}"}
    retry: {max_attempts: 1}
`

// TestRetryCLI: `dpe workflow retry` resumes a failed instance from its
// failed step, keeping the finished one; `dpe job retry` runs a failed job
// again; both refuse what cannot be retried, exit 1 with the reason.
func TestRetryCLI(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	up := startDPE(t, "dpe up", dir, "up", "--data", filepath.Join(dir, "data"), "--listen", addr)
	up.waitLine("dpe is up", 60*time.Second)
	dpe := func(args ...string) (string, string, int) {
		t.Helper()
		return runDPE(t, dir, append(args, "--server", "http://"+addr)...)
	}
	tpl := filepath.Join(dir, "retryable.yaml")
	if err := os.WriteFile(tpl, []byte(retryTemplate), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := dpe("template", "import", tpl); code != 0 {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}

	late := filepath.Join(dir, "late.txt")
	out, errOut, code := dpe("workflow", "start", "retryable", "--name", "r1", "--arg", "path="+late, "--wait")
	if code != exitNotGreen {
		t.Fatalf("start with the file missing: exit %d, want %d\n%s%s", code, exitNotGreen, out, errOut)
	}
	if err := os.WriteFile(late, []byte("now it is here"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code = dpe("workflow", "retry", "r1", "--wait"); code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("workflow retry --wait: exit %d\n%s%s\n%s", code, out, errOut, up.output())
	}
	out, _, _ = dpe("workflow", "show", "r1", "-o", "json")
	var d model.InstanceDetail
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("show: %v\n%s", err, out)
	}
	out, _, _ = dpe("job", "list", "--workflow", strconv.FormatInt(d.Instance.ID, 10), "-o", "json")
	var jobs model.Page[model.Job]
	if err := json.Unmarshal([]byte(out), &jobs); err != nil {
		t.Fatalf("job list: %v\n%s", err, out)
	}
	if jobs.Total != 2 {
		t.Fatalf("instance has %d jobs, want 2 (the finished first step is kept, the failed one runs again in place)\n%s", jobs.Total, out)
	}
	for _, j := range jobs.Items {
		if j.State != model.JobSucceeded || j.Attempt != 1 {
			t.Errorf("job %d (step %s): %s attempt %d, want succeeded at attempt 1", j.ID, j.Step, j.State, j.Attempt)
		}
	}
	// A succeeded instance is not retried; nor is a job of a workflow.
	if _, errOut, code = dpe("workflow", "retry", "r1"); code != exitError || !strings.Contains(errOut, "succeeded") {
		t.Fatalf("retry of a succeeded instance: exit %d, want %d\n%s", code, exitError, errOut)
	}
	if _, errOut, code = dpe("job", "retry", strconv.FormatInt(jobs.Items[0].ID, 10)); code != exitError || !strings.Contains(errOut, "workflow retry") {
		t.Fatalf("job retry of a workflow job: exit %d, want %d\n%s", code, exitError, errOut)
	}

	// A failed job, retried once its file exists.
	later := filepath.Join(dir, "later.txt")
	out, errOut, code = dpe("job", "submit", "util.checksum", "--param", "path="+later, "--max-attempts", "1", "--wait", "-o", "json")
	var j model.Job
	if code != exitNotGreen || json.Unmarshal([]byte(out), &j) != nil || j.State != model.JobFailed {
		t.Fatalf("submit with the file missing: exit %d, want %d\n%s%s", code, exitNotGreen, out, errOut)
	}
	if err := os.WriteFile(later, []byte("here too"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := strconv.FormatInt(j.ID, 10)
	if out, errOut, code = dpe("job", "retry", id, "--wait"); code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("job retry --wait: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code = dpe("job", "retry", id); code != exitError || !strings.Contains(errOut, "succeeded") {
		t.Fatalf("retry of a succeeded job: exit %d, want %d\n%s", code, exitError, errOut)
	}
	if _, errOut, code = dpe("job", "retry", "x"); code != exitUsage {
		t.Fatalf("job retry x: exit %d, want %d\n%s", code, exitUsage, errOut)
	}
	if err := up.stop(30 * time.Second); err != nil {
		t.Fatalf("dpe up did not stop cleanly: %v", err)
	}
}
