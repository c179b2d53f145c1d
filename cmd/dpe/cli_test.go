package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// TestCLITalksLikeATool runs the CLI findings of issue 12 against a real
// `dpe up`, asserting what the user sees and the exit code: global flags
// before the command, errors without HTTP plumbing or engine names, exit
// codes 2/1/3/4, a failure printed once under --wait, `type set` changing
// only the fields given, `trigger records` of an unknown name, the active
// copy of a concurrent trigger, and `job list --workflow NAME`.
func TestCLITalksLikeATool(t *testing.T) {
	u := startUp(t)
	dpe := u.dpe
	dir, srv := u.dir, u.url
	// plumbing is what a user must never read in an error.
	plumbing := regexp.MustCompile(`(GET|POST|PUT) /v1|\b(404|422|409)\b|sqlite|postgres`)

	out, _, code := dpe("job", "submit", "noop")
	var id string
	if m := regexp.MustCompile(`job (\d+) submitted`).FindStringSubmatch(out); code != 0 || m == nil {
		t.Fatalf("submit: exit %d\n%s", code, out)
	} else {
		id = m[1]
	}

	t.Run("global flags anywhere", func(t *testing.T) {
		before, errOut, code := runDPE(t, dir, "-o", "json", "--server", srv, "job", "show", id)
		if code != 0 {
			t.Fatalf("dpe -o json job show: exit %d\n%s", code, errOut)
		}
		after, _, code := runDPE(t, dir, "job", "show", id, "-o", "json", "--server", srv)
		if code != 0 {
			t.Fatalf("dpe job show -o json: exit %d", code)
		}
		var a, b model.Job
		if json.Unmarshal([]byte(before), &a) != nil || json.Unmarshal([]byte(after), &b) != nil || a.ID != b.ID || a.ID == 0 {
			t.Fatalf("not the same job as JSON:\n%s\n%s", before, after)
		}
		_, errOut, code = runDPE(t, dir, "--wait", "job", "show", id)
		if code != exitUsage || !strings.Contains(errOut, "global flags are") {
			t.Errorf("unknown flag before the command: exit %d\n%s", code, errOut)
		}
		out, _, code := runDPE(t, dir, "help")
		if code != 0 || !strings.Contains(out, "exit codes") || !strings.Contains(out, "4  the server could not be reached") {
			t.Errorf("help lacks the exit codes: exit %d\n%s", code, out)
		}
	})

	t.Run("errors say what is wrong", func(t *testing.T) {
		_, errOut, code := dpe("job", "submit", "nosuch.type")
		if code != exitUsage || !strings.HasPrefix(errOut, `dpe: unknown job type "nosuch.type"; known: `) ||
			!strings.Contains(errOut, "util.copy") || !strings.HasSuffix(errOut, " (type)\n") ||
			strings.Count(errOut, "type:") != 0 || plumbing.MatchString(errOut) {
			t.Errorf("unknown type: exit %d\n%s", code, errOut)
		}
		_, errOut, code = dpe("job", "show", "9999")
		if code != exitUsage || errOut != "dpe: job 9999 not found\n" {
			t.Errorf("job show 9999: exit %d\n%q", code, errOut)
		}
		_, errOut, code = runDPE(t, dir, "status", "--server", srv+"/v1")
		if code != exitUsage || !strings.Contains(errOut, "base URL") || !strings.Contains(errOut, ": "+srv+"\n") {
			t.Errorf("--server with /v1: exit %d\n%s", code, errOut)
		}
	})

	t.Run("a failure under --wait is printed once", func(t *testing.T) {
		out, errOut, code := dpe("job", "submit", "noop", "--param", "fail=true", "--max-attempts", "1", "--wait")
		var j model.Job
		jOut, _, _ := dpe("job", "list", "--state", "failed", "--limit", "1", "-o", "json")
		var page model.Page[model.Job]
		if code != exitNotGreen || json.Unmarshal([]byte(jOut), &page) != nil || len(page.Items) != 1 {
			t.Fatalf("failing job: exit %d\n%s%s", code, out, errOut)
		}
		j = page.Items[0]
		if j.Error == "" || strings.Count(out+errOut, j.Error) != 1 {
			t.Errorf("the job's error %q is not printed exactly once:\nstdout:\n%s\nstderr:\n%s", j.Error, out, errOut)
		}
		out, errOut, code = dpe("workflow", "start", "fanout", "--args-json", `{"files": []}`, "--wait")
		if code != exitNotGreen || strings.Count(out+errOut, "nothing to do") != 1 {
			t.Errorf("failing workflow: exit %d, its error not printed exactly once:\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
		}
	})

	t.Run("type set changes only the fields given", func(t *testing.T) {
		if _, errOut, code := dpe("type", "set", "util.copy", "--max-running", "4"); code != 0 {
			t.Fatalf("max running: exit %d\n%s", code, errOut)
		}
		if _, errOut, code := dpe("type", "set", "util.copy", "--rate", "10", "--burst", "10"); code != 0 {
			t.Fatalf("rate: exit %d\n%s", code, errOut)
		}
		out, _, _ := dpe("type", "list", "-o", "json")
		var list wire.Items[model.TypeLimit]
		if err := json.Unmarshal([]byte(out), &list); err != nil {
			t.Fatal(err)
		}
		want := model.TypeLimit{Type: "util.copy", MaxRunning: 4, Rate: 10, Burst: 10}
		found := false
		for _, l := range list.Items {
			found = found || l == want
		}
		if !found {
			t.Errorf("types %+v lack %+v", list.Items, want)
		}
		_, errOut, code := dpe("type", "set", "nosuch.type", "--max-running", "3")
		if code != exitUsage || !strings.HasPrefix(errOut, `dpe: unknown job type "nosuch.type"; known: `) || !strings.Contains(errOut, "util.copy") {
			t.Errorf("unknown type: exit %d\n%s", code, errOut)
		}
		if _, errOut, code := dpe("type", "set", "nosuch.type", "--max-running", "3", "--create"); code != 0 {
			t.Errorf("--create: exit %d\n%s", code, errOut)
		}
		out, _, _ = dpe("type", "list")
		if !regexp.MustCompile(`(?m)^noop\s+unlimited\s+unlimited\s+-\s*$`).MatchString(out) ||
			!regexp.MustCompile(`(?m)^util\.copy\s+4\s+10\s+10\s*$`).MatchString(out) {
			t.Errorf("type list:\n%s", out)
		}
	})

	t.Run("triggers", func(t *testing.T) {
		_, errOut, code := dpe("trigger", "records", "nosuch")
		if code != exitUsage || errOut != "dpe: trigger nosuch not found\n" {
			t.Errorf("records of an unknown trigger: exit %d\n%q", code, errOut)
		}
		var out string
		if !eventually.Within(30*time.Second, func() bool {
			out, _, _ = dpe("trigger", "list")
			return regexp.MustCompile(`(?m)^inbox\s+folder\s+all \(concurrent\)\s`).MatchString(out)
		}) {
			t.Fatalf("trigger list does not show dpe up's inbox watcher as run by all copies:\n%s", out)
		}
		if _, errOut, code := dpe("trigger", "records", "inbox"); code != 0 {
			t.Errorf("records of a trigger without any: exit %d\n%s", code, errOut)
		}
		if out, errOut, code := dpe("trigger", "pause", "inbox"); code != 0 || !strings.Contains(out, "trigger inbox paused") {
			t.Errorf("pause: exit %d\n%s%s", code, out, errOut)
		}
		if out, _, _ = dpe("trigger", "list"); !regexp.MustCompile(`(?m)^inbox\s+folder\s.*paused since `).MatchString(out) {
			t.Errorf("trigger list does not show inbox paused:\n%s", out)
		}
		if out, errOut, code := dpe("trigger", "resume", "inbox"); code != 0 || !strings.Contains(out, "trigger inbox running") {
			t.Errorf("resume: exit %d\n%s%s", code, out, errOut)
		}
		if _, errOut, code := dpe("trigger", "pause", "nosuch"); code != exitUsage || !strings.Contains(errOut, "nosuch not found") {
			t.Errorf("pause of an unknown trigger: exit %d\n%s", code, errOut)
		}
	})

	t.Run("list filters take names", func(t *testing.T) {
		if out, errOut, code := dpe("workflow", "start", "recover", "--name", "named-r1", "--wait"); code != 0 {
			t.Fatalf("recover: exit %d\n%s%s", code, out, errOut)
		}
		out, _, _ := dpe("workflow", "list", "--name", "named-r1", "-o", "json")
		var wf model.Page[model.Instance]
		if err := json.Unmarshal([]byte(out), &wf); err != nil || wf.Total != 1 {
			t.Fatalf("workflow list --name: %v\n%s", err, out)
		}
		out, _, code := dpe("job", "list", "--workflow", "named-r1", "-o", "json")
		var jobs model.Page[model.Job]
		if err := json.Unmarshal([]byte(out), &jobs); code != 0 || err != nil || jobs.Total == 0 {
			t.Fatalf("job list --workflow NAME: exit %d %v\n%s", code, err, out)
		}
		for _, j := range jobs.Items {
			if j.InstanceID != wf.Items[0].ID {
				t.Errorf("job %d of instance %d listed for %d", j.ID, j.InstanceID, wf.Items[0].ID)
			}
		}
		_, errOut, code := dpe("job", "list", "--workflow", "nosuch")
		if code != exitUsage || errOut != "dpe: workflow instance nosuch not found\n" {
			t.Errorf("job list --workflow nosuch: exit %d\n%q", code, errOut)
		}
	})
}

// TestCLIUnreachableServer: a dead --server is reported on stderr at once
// (within 2 s, one line, not one per attempt), and the command gives up
// after --timeout (or DPE_TIMEOUT) with exit 4.
func TestCLIUnreachableServer(t *testing.T) {
	dead := "http://" + freeAddr(t) // nothing listens there any more
	dir := t.TempDir()
	dpeBinary(t) // built before the clock starts

	start := time.Now()
	// job submit has a --timeout of its own (the job's): the global one is
	// --server-timeout there, or --timeout before the command.
	_, errOut, code := runDPE(t, dir, "--timeout", "3s", "job", "submit", "noop", "--server", dead)
	took := time.Since(start)
	notice := "dpe: cannot reach " + dead + " (connection refused); retrying for up to 3s …\n"
	giveUp := regexp.MustCompile(`^dpe: cannot reach ` + regexp.QuoteMeta(dead) + ` \(connection refused\); gave up after (\d+ms|[0-3](\.\d)?s) \(--timeout, env DPE_TIMEOUT\)\n$`)
	lines := strings.SplitAfter(errOut, "\n")
	if code != exitNoServer || len(lines) != 3 || lines[0] != notice || !giveUp.MatchString(lines[1]) {
		t.Errorf("job submit to a dead server: exit %d, stderr:\n%s", code, errOut)
	}
	if took > 10*time.Second {
		t.Errorf("gave up after %s, want about --timeout 3s", took)
	}
	_, errOut, code = runDPE(t, dir, "type", "list", "--server", dead, "--timeout", "1s")
	if code != exitNoServer || strings.Count(errOut, "retrying") != 1 {
		t.Errorf("type list --timeout 1s: exit %d\n%s", code, errOut)
	}

	// The notice comes within 2 s with the default timeout of 30 s.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, dpeBinary(t), "status", "--server", dead)
	cmd.Dir = dir
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	first := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stderr).ReadString('\n')
		first <- l
	}()
	select {
	case l := <-first:
		if l != "dpe: cannot reach "+dead+" (connection refused); retrying for up to 30s …\n" {
			t.Errorf("first stderr line %q", l)
		}
	case <-time.After(2 * time.Second):
		t.Error("no notice on stderr within 2s")
	}

	// DPE_TIMEOUT sets the timeout too.
	cmd = exec.Command(dpeBinary(t), "status", "--server", dead)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DPE_TIMEOUT=1s")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != exitNoServer || !strings.Contains(string(out), "retrying for up to 1s") {
		t.Errorf("DPE_TIMEOUT=1s: %v\n%s", err, out)
	}
}
