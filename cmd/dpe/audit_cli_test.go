package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/wire"
)

// TestAuditList runs `dpe audit list` against a real `dpe up`: a submit
// and a refused template deletion show with the local admin token's name,
// filters narrow the list, the table has its header and the page line,
// and bad flags are usage errors that name the flag.
func TestAuditList(t *testing.T) {
	u := startUp(t)
	dpe := u.dpe
	if _, errOut, code := dpe("job", "submit", "noop"); code != 0 {
		t.Fatalf("job submit: exit %d\n%s", code, errOut)
	}
	if _, _, code := dpe("template", "delete", "nosuch"); code != 2 {
		t.Fatalf("template delete nosuch: exit %d, want 2", code)
	}
	list := func(args ...string) wire.AuditPage {
		t.Helper()
		out, errOut, code := dpe(append([]string{"audit", "list", "-o", "json"}, args...)...)
		if code != 0 {
			t.Fatalf("audit list %v: exit %d\n%s", args, code, errOut)
		}
		var p wire.AuditPage
		if err := json.Unmarshal([]byte(out), &p); err != nil {
			t.Fatalf("audit list -o json: %v\n%s", err, out)
		}
		return p
	}
	deleted := eventually.Value(t, 10*time.Second, func() (wire.AuditPage, error) {
		return list("--route", "DELETE /v1/templates/{name}"), nil
	}, func(p wire.AuditPage) bool { return p.Total == 1 }, "the refused deletion in the trail")
	if e := deleted.Items[0]; e.Principal != "local-admin" || e.Status != 404 || e.Target != "name=nosuch" || e.Outcome != "not found" {
		t.Fatalf("deletion entry: %+v", e)
	}
	if p := list("--route", "POST /v1/jobs", "--principal", "local-admin", "--since", "1h"); p.Total != 1 || p.Items[0].Status != 201 {
		t.Fatalf("submit entries: %+v", p)
	}
	if p := list("--principal", "anonymous"); p.Total != 0 || len(p.Items) != 0 {
		t.Fatalf("anonymous entries on a fresh up: %+v", p)
	}
	if p := list("--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)); p.Total != 0 {
		t.Fatalf("entries since an hour ahead: %+v", p)
	}
	all := list()
	if p := list("-n", "1"); len(p.Items) != 1 || p.Total != all.Total || p.Next == "" {
		t.Fatalf("-n 1: %d items of %d, next %q; want 1 of %d and a next page", len(p.Items), p.Total, p.Next, all.Total)
	}
	out, _, code := dpe("audit", "list", "-n", "1")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 3 ||
		!strings.HasPrefix(lines[0], "ID") || !strings.Contains(lines[0], "PRINCIPAL") || !strings.Contains(lines[2], "next page: --after") {
		t.Fatalf("audit list -n 1: exit %d\n%s", code, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "yesterday"}, "-since"},
		{[]string{"-n", "0"}, "-n"},
		{[]string{"--route", "jobs"}, "route"},
		{[]string{"--since", "1h", "--until", "2h"}, "--until"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		_, errOut, code := dpe(append([]string{"audit", "list"}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Contains(errOut, "/v1/audit") {
			t.Errorf("audit list %v: exit %d, stderr %q; want 2 naming %q", c.args, code, errOut, c.want)
		}
	}
}
