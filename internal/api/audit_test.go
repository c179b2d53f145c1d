package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/api"
	"github.com/dpe-engine/dpe/internal/coredb"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server/jobs"
	"github.com/dpe-engine/dpe/internal/server/triggers"
	"github.com/dpe-engine/dpe/internal/server/wake"
	"github.com/dpe-engine/dpe/internal/server/workflows"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/token"
)

// auditServer serves the API on the store at dsn with its audit writer
// running, and one token per role (named for the role). It returns the
// URL and the secrets by role.
func auditServer(t *testing.T, dsn string) (string, map[model.Role]string) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := coredb.Open(context.Background(), dsn, log)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	secrets := map[model.Role]string{}
	for _, r := range model.Roles {
		_, s, err := token.Create(t.Context(), st.(store.TokenStore), model.Token{Name: string(r), Role: r}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		secrets[r] = s
	}
	hub := wake.NewHub()
	js := jobs.New(jobs.Config{Store: st, Log: log, Wake: hub})
	flows := workflows.New(workflows.Config{Store: st, Log: log, Wake: hub, KnownJobType: js.KnownType})
	trig := triggers.New(triggers.Config{Store: st.(store.TriggerStore), Flows: flows, Log: log})
	h := api.New(api.Config{Jobs: js, Flows: flows, Triggers: trig, Store: st, Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.RunAudit(ctx) }()
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		hub.Close()
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunAudit: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return srv.URL, secrets
}

// auditEntries lists the trail as admin with the query, failing the test
// unless the answer is 200.
func auditEntries(t *testing.T, base, admin, query string) (items []model.AuditEntry, total int, next string) {
	t.Helper()
	a := must(t, http.StatusOK, "GET", base+"/v1/audit?"+query, "", bearer(admin))
	var p model.Page[model.AuditEntry]
	if err := json.Unmarshal(a.body, &p); err != nil {
		t.Fatalf("audit page: %v: %s", err, a.body)
	}
	return p.Items, p.Total, p.Next
}

func bearer(secret string) map[string]string {
	if secret == "" {
		return nil
	}
	return map[string]string{"Authorization": "Bearer " + secret}
}

// TestAuditTrail: each answered mutating call leaves exactly one entry
// naming who, what and how it ended (a submit, a template deletion, a
// refused cancel, a call without a token); machine traffic (a processor's
// registration and heartbeat) leaves none unless refused; only an admin
// reads the trail, with strictly parsed filters.
func TestAuditTrail(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		base, sec := auditServer(t, dsn)
		admin, ops, eye, proc := sec[model.RoleAdmin], sec[model.RoleOperator], sec[model.RoleViewer], sec[model.RoleProcessor]
		with := func(secret string, kv ...string) map[string]string {
			h := bearer(secret)
			for i := 0; i+1 < len(kv); i += 2 {
				h[kv[i]] = kv[i+1]
			}
			return h
		}
		// Recorded: what people do, refused or not.
		id := must(t, 201, "POST", base+"/v1/jobs", `{"type":"noop","params":{"result":{"password":"s3cret"}}}`, with(ops, "X-Request-Id", "req-submit")).id(t)
		must(t, 201, "POST", base+"/v1/templates", "name: gone\nsteps:\n  - {id: a, log: hi}\n", with(admin, "Content-Type", "application/yaml"))
		must(t, 204, "DELETE", base+"/v1/templates/gone", "", bearer(admin))
		must(t, 403, "POST", base+"/v1/jobs/"+strconv.FormatInt(id, 10)+"/cancel", "", bearer(eye))
		must(t, 401, "POST", base+"/v1/jobs/batch", `{"jobs":[{"type":"noop"}]}`, nil)
		// Machine traffic: not recorded unless refused.
		must(t, 204, "PUT", base+"/v1/processors/p1", `{"quota":{"noop":1}}`, bearer(proc))
		must(t, 200, "POST", base+"/v1/heartbeats", `{"processor":"p1","jobs":[]}`, bearer(proc))
		must(t, 403, "POST", base+"/v1/heartbeats", `{"processor":"p1","jobs":[]}`, bearer(eye))
		// Reads are not recorded, and only an admin reads the trail.
		must(t, 200, "GET", base+"/v1/jobs/"+strconv.FormatInt(id, 10), "", bearer(eye))
		for _, r := range []model.Role{model.RoleViewer, model.RoleOperator, model.RoleProcessor, model.RoleTrigger} {
			must(t, 403, "GET", base+"/v1/audit", "", bearer(sec[r]))
		}
		must(t, 401, "GET", base+"/v1/audit", "", nil)

		const want = 6 // submit, import, delete, refused cancel, 401 batch, refused heartbeat
		eventually.True(t, 10*time.Second, func() bool {
			_, total, _ := auditEntries(t, base, admin, "")
			return total >= want
		}, "the audit entries of the calls")
		items, total, next := auditEntries(t, base, admin, "")
		if total != want || len(items) != want || next != "" {
			for _, e := range items {
				t.Logf("entry %+v", e)
			}
			t.Fatalf("the trail has %d entries (%d listed, next %q), want %d", total, len(items), next, want)
		}
		type row struct {
			principal string
			role      model.Role
			route     string
			target    string
			status    int
			outcome   string
		}
		wantRows := []row{ // newest first
			{"viewer", model.RoleViewer, "POST /v1/heartbeats", "", 403, "forbidden"},
			{"anonymous", "", "POST /v1/jobs/batch", "", 401, "unauthorized"},
			{"viewer", model.RoleViewer, "POST /v1/jobs/{id}/cancel", "id=" + strconv.FormatInt(id, 10), 403, "forbidden"},
			{"admin", model.RoleAdmin, "DELETE /v1/templates/{name}", "name=gone", 204, "ok"},
			{"admin", model.RoleAdmin, "POST /v1/templates", "created=/v1/templates/gone", 201, "ok"},
			{"operator", model.RoleOperator, "POST /v1/jobs", "created=/v1/jobs/" + strconv.FormatInt(id, 10), 201, "ok"},
		}
		for i, w := range wantRows {
			e := items[i]
			got := row{e.Principal, e.Role, e.Route, e.Target, e.Status, e.Outcome}
			if got != w {
				t.Errorf("entry %d = %+v, want %+v", i, got, w)
			}
			if e.Remote == "" || e.At.IsZero() || e.ID <= 0 || e.RequestID == "" {
				t.Errorf("entry %d lacks remote, time, id or request id: %+v", i, e)
			}
		}
		if e := items[len(items)-1]; e.RequestID != "req-submit" || e.Method != "POST" {
			t.Errorf("submit entry: request id %q, method %q; want req-submit, POST", e.RequestID, e.Method)
		}
		// Nothing of a body is kept.
		raw := must(t, 200, "GET", base+"/v1/audit", "", bearer(admin)).body
		if bytes.Contains(raw, []byte("s3cret")) || bytes.Contains(raw, []byte("password")) {
			t.Fatalf("the trail holds a request body: %s", raw)
		}

		// Filters and paging.
		for _, c := range []struct {
			query string
			want  int
		}{
			{"principal=viewer", 2},
			{"principal=anonymous", 1},
			{"route=" + url.QueryEscape("DELETE /v1/templates/{name}"), 1},
			{"route=" + url.QueryEscape("POST /v1/jobs"), 1},
			{"principal=admin&route=" + url.QueryEscape("POST /v1/templates"), 1},
			{"since=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), 0},
			{"until=" + url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), want},
		} {
			if _, total, _ := auditEntries(t, base, admin, c.query); total != c.want {
				t.Errorf("GET /v1/audit?%s: total %d, want %d", c.query, total, c.want)
			}
		}
		var walked []int64
		for q := "limit=4"; ; {
			items, _, next := auditEntries(t, base, admin, q)
			for _, e := range items {
				walked = append(walked, e.ID)
			}
			if next == "" {
				break
			}
			q = "limit=4&cursor=" + next
		}
		if len(walked) != want {
			t.Fatalf("pages of 4 walked %d entries, want %d", len(walked), want)
		}
		for i := 1; i < len(walked); i++ {
			if walked[i] >= walked[i-1] {
				t.Fatalf("pages are not newest first: ids %v", walked)
			}
		}

		// Bad filters name the parameter at fault.
		for q, field := range map[string]string{
			"limit=0": "limit", "limit=1001": "limit", "limit=x": "limit", "cursor=-1": "cursor", "cursor=a": "cursor",
			"since=yesterday": "since", "until=2026-01-01": "until", "route=" + url.QueryEscape("GET /v1/jobs"): "route",
			"route=jobs": "route", "principal=": "principal", "who=me": "who", "limit=1&limit=2": "limit",
			"since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z": "until",
		} {
			p := asProblem(t, must(t, 422, "GET", base+"/v1/audit?"+q, "", bearer(admin)))
			if p.Field != field {
				t.Errorf("GET /v1/audit?%s: field %q, want %q (%s)", q, p.Field, field, p.Detail)
			}
		}
		// Still six: the reads and refused reads above added nothing.
		if _, total, _ := auditEntries(t, base, admin, ""); total != want {
			t.Fatalf("after the reads the trail has %d entries, want %d", total, want)
		}
	})
}
