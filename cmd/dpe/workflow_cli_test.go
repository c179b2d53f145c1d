package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
)

// TestWorkflowCLI drives templates and workflows through the CLI against
// `dpe up`: import of the examples (twice: the second is a no-op), export,
// start --wait of the ingest example on real files, the exit code of a
// failing workflow, lists in JSON.
func TestWorkflowCLI(t *testing.T) {
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	u := startUp(t)
	dpe := u.dpe
	dir, up := u.dir, u.up

	// dpe up imported the examples already: importing them again changes
	// nothing.
	examples := filepath.Join(repo, "examples", "templates")
	files, _ := filepath.Glob(filepath.Join(examples, "*.yaml"))
	out, errOut, code := dpe("template", "import", examples)
	if code != 0 || len(files) < 3 || strings.Count(out, "unchanged") != len(files) {
		t.Fatalf("re-import is not a no-op: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = dpe("template", "export", "ingest")
	if code != 0 || !strings.Contains(out, "name: ingest") || !strings.Contains(out, "version: 1") {
		t.Fatalf("export: exit %d\n%s", code, out)
	}
	// The export imports back as the same template.
	exported := filepath.Join(dir, "exported.yaml")
	if err := os.WriteFile(exported, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _, code = dpe("template", "import", exported); code != 0 || !strings.Contains(out, "unchanged") {
		t.Fatalf("exported template re-imported as new: exit %d\n%s", code, out)
	}

	// Ingest a real file into an archive folder.
	in := filepath.Join(dir, "inbox", "take1.wav")
	if err := os.MkdirAll(filepath.Dir(in), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, []byte(strings.Repeat("pcm", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "archive")
	out, errOut, code = dpe("workflow", "start", "ingest", "--name", "take1", "--arg", "path="+in, "--arg", "archive="+archive, "--wait")
	if code != 0 || !strings.Contains(out, "succeeded") {
		t.Fatalf("ingest: exit %d\n%s\n%s\n%s", code, out, errOut, up.output())
	}
	if _, err := os.Stat(filepath.Join(archive, "take1.wav")); err != nil {
		t.Fatalf("archived file: %v", err)
	}
	if _, err := os.Stat(in); err != nil {
		t.Fatalf("ingest must keep its source: %v", err)
	}
	// Starting the same name again with the same args returns the
	// existing instance; with other args it is refused, naming it.
	out, _, code = dpe("workflow", "start", "ingest", "--name", "take1", "--arg", "path="+in, "--arg", "archive="+archive)
	if code != 0 || !strings.Contains(out, "already exists") {
		t.Fatalf("second start: exit %d\n%s", code, out)
	}
	_, errOut, code = dpe("workflow", "start", "ingest", "--name", "take1", "--arg", "path="+in)
	if code != exitError || !strings.Contains(errOut, "different args (archive)") || !strings.Contains(errOut, "succeeded") {
		t.Fatalf("start of the name with other args: exit %d, want %d\n%s", code, exitError, errOut)
	}

	// try/catch recovers from the failing job.
	if out, errOut, code = dpe("workflow", "start", "recover", "--wait"); code != 0 {
		t.Fatalf("recover: exit %d\n%s%s", code, out, errOut)
	}
	// A failing workflow exits 3: fanout refuses an empty list.
	out, _, code = dpe("workflow", "start", "fanout", "--args-json", `{"files": []}`, "--wait")
	if code != exitNotGreen || !strings.Contains(out, "nothing to do") {
		t.Fatalf("failing workflow: exit %d, want %d\n%s", code, exitNotGreen, out)
	}
	// A bad argument is refused with the field named, exit 2 (bad input),
	// nothing started.
	_, errOut, code = dpe("workflow", "start", "fanout", "--arg", "nosuch=1")
	if code != exitUsage || !strings.Contains(errOut, "nosuch") {
		t.Fatalf("bad arg: exit %d\n%s", code, errOut)
	}

	out, _, code = dpe("workflow", "list", "-o", "json")
	var page model.Page[model.Instance]
	if code != 0 || json.Unmarshal([]byte(out), &page) != nil || page.Total != 3 {
		t.Fatalf("workflow list: exit %d\n%s", code, out)
	}

	// A file dropped into dpe up's inbox is ingested into its archive.
	drop := filepath.Join(dir, "data", "inbox", "promo.mxf")
	if err := os.WriteFile(drop+".part", []byte(strings.Repeat("essence", 500)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(drop+".part", drop); err != nil {
		t.Fatal(err)
	}
	archived := filepath.Join(dir, "data", "archive", "promo.mxf")
	if !eventually.Within(60*time.Second, func() bool {
		_, errArchived := os.Stat(archived)
		_, errDrop := os.Stat(drop)
		return errArchived == nil && os.IsNotExist(errDrop)
	}) {
		out, _, _ := dpe("workflow", "list")
		t.Fatalf("inbox file not ingested within 60s:\n%s\n%s", out, up.output())
	}
	out, _, _ = dpe("trigger", "list")
	if !strings.Contains(out, "inbox") || !strings.Contains(out, "folder") {
		t.Fatalf("trigger list:\n%s", out)
	}
	out, _, code = dpe("workflow", "show", "take1")
	if code != 0 || !strings.Contains(out, "sum") || !strings.Contains(out, "succeeded") {
		t.Fatalf("show: exit %d\n%s", code, out)
	}
	if err := up.stop(30 * time.Second); err != nil {
		t.Fatalf("dpe up did not stop cleanly: %v", err)
	}
}
