package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// TestAlertCLI: dpe up with an alerts section; a bad one is refused
// naming the field; dpe alert test reports each receiver and exits 1 when
// one fails; a failed workflow shows in dpe alert list with where each
// receiver's notification stands.
func TestAlertCLI(t *testing.T) {
	dir := t.TempDir()
	var okCalls atomic.Int32
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { okCalls.Add(1) }))
	t.Cleanup(ok.Close)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	t.Cleanup(down.Close)
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}

	bad := write("bad.yaml", "alerts:\n  receivers: [{name: ops, webhook: '"+ok.URL+"'}]\n  rules: [{name: f, kind: workflow_failed, receivers: [pager]}]\n")
	_, errOut, code := runDPE(t, dir, "up", "--data", filepath.Join(dir, "bad"), "--listen", freeAddr(t), "--config", bad)
	if code != exitUsage || !strings.Contains(errOut, `alerts.rules[0].receivers[0]: "pager" is not a receiver`) {
		t.Fatalf("dpe up with a bad alerts section: exit %d\n%s", code, errOut)
	}

	cfg := write("dpe.yaml", `alerts:
  every: 200ms
  retry: {attempts: 3, backoff: 1m}
  receivers:
    - {name: ops, webhook: "`+ok.URL+`"}
    - {name: down, webhook: "`+down.URL+`"}
  rules:
    - {name: failed, kind: workflow_failed, match: [fanout]}
`)
	addr := freeAddr(t)
	srv := "http://" + addr
	up := startDPE(t, "dpe up", dir, "up", "--data", filepath.Join(dir, "data"), "--listen", addr, "--config", cfg)
	up.waitLine("dpe is up", 60*time.Second)
	dpe := func(args ...string) (string, string, int) {
		t.Helper()
		return runDPE(t, dir, append(args, "--server", srv)...)
	}

	out, errOut, code := dpe("alert", "test")
	if code != exitError || !strings.Contains(errOut, "1 of 2 alert receivers failed the test") ||
		!strings.Contains(out, "ops ") || !strings.Contains(out, "sent") || !strings.Contains(out, "503 Service Unavailable") {
		t.Fatalf("dpe alert test: exit %d\n%s%s", code, out, errOut)
	}
	if okCalls.Load() != 1 {
		t.Fatalf("the ok receiver got %d calls from the test, want 1", okCalls.Load())
	}

	if _, errOut, code := dpe("workflow", "start", "fanout", "--args-json", `{"files":[]}`, "--wait"); code != exitNotGreen {
		t.Fatalf("failing workflow: exit %d\n%s", code, errOut)
	}
	list := eventually.Value(t, 20*time.Second, func() (wire.AlertList, error) {
		out, errOut, code := dpe("alert", "list", "-o", "json")
		var l wire.AlertList
		if code != 0 {
			t.Fatalf("dpe alert list -o json: exit %d\n%s", code, errOut)
		}
		return l, json.Unmarshal([]byte(out), &l)
	}, func(l wire.AlertList) bool {
		return l.Firing == 1 && len(l.Items[0].Deliveries) == 2 && l.Items[0].Deliveries[0].SentAt != nil && l.Items[0].Deliveries[1].Attempts == 1
	}, "a firing alert, sent to ops, failed once to down")
	a := list.Items[0]
	if a.Kind != model.AlertWorkflowFailed || list.Total != 1 || len(list.Rules) != 1 || !strings.Contains(a.Deliveries[1].LastError, "503") {
		t.Fatalf("alert list = %+v", list)
	}
	out, _, code = dpe("alert", "list", "--state", "firing")
	if code != 0 || !strings.Contains(out, "firing  failed") || !strings.Contains(out, "ops: firing sent") ||
		!strings.Contains(out, "down: retrying, 1 failed") || !strings.Contains(out, "1 firing, 0 pending") {
		t.Fatalf("dpe alert list --state firing: exit %d\n%s", code, out)
	}
	if okCalls.Load() != 2 {
		t.Fatalf("the ok receiver got %d calls, want 2 (the test and the alert)", okCalls.Load())
	}
	if _, errOut, code := dpe("alert", "list", "--state", "burning"); code != exitUsage || !strings.Contains(errOut, `--state: "burning" is not a state`) {
		t.Fatalf("bad --state: exit %d\n%s", code, errOut)
	}
}
