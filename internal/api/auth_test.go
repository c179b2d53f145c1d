package api_test

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/alert"
	"github.com/dpe-engine/dpe/internal/api"
	"github.com/dpe-engine/dpe/internal/coredb"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server/jobs"
	"github.com/dpe-engine/dpe/internal/server/triggers"
	"github.com/dpe-engine/dpe/internal/server/wake"
	"github.com/dpe-engine/dpe/internal/server/workflows"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/token"
)

// wantRoles is who may call each route, written out here independently of
// the API's own table: A admin, O operator, V viewer, P processor, T
// trigger. A route the API registers that is missing here fails
// TestRoleMatrix, and so does one listed here that the API lacks.
var wantRoles = map[string]string{
	"GET /metrics":                           "AOV",
	"GET /debug/pprof/":                      "A",
	"GET /debug/pprof/cmdline":               "A",
	"GET /debug/pprof/profile":               "A",
	"GET /debug/pprof/symbol":                "A",
	"GET /debug/pprof/trace":                 "A",
	"GET /v1/status":                         "AOVPT",
	"POST /v1/jobs":                          "AO",
	"POST /v1/jobs/batch":                    "AO",
	"GET /v1/jobs":                           "AOV",
	"GET /v1/jobs/{id}":                      "AOV",
	"POST /v1/jobs/{id}/cancel":              "AO",
	"POST /v1/jobs/{id}/retry":               "AO",
	"POST /v1/jobs/{id}/priority":            "AO",
	"POST /v1/jobs/{id}/progress":            "AP",
	"POST /v1/jobs/{id}/complete":            "AP",
	"POST /v1/completions":                   "AP",
	"POST /v1/jobs/{id}/release":             "AP",
	"GET /v1/jobs/{id}/logs":                 "AOV",
	"POST /v1/jobs/{id}/logs":                "AP",
	"POST /v1/claims":                        "AP",
	"POST /v1/heartbeats":                    "AP",
	"PUT /v1/processors/{id}":                "AP",
	"GET /v1/processors":                     "AOV",
	"GET /v1/types":                          "AOV",
	"PUT /v1/types/{name}":                   "A",
	"POST /v1/templates":                     "AO",
	"GET /v1/templates":                      "AOVP",
	"GET /v1/templates/{name}":               "AOVP",
	"DELETE /v1/templates/{name}":            "A",
	"POST /v1/workflows":                     "AO",
	"POST /v1/workflows/batch":               "AO",
	"GET /v1/workflows":                      "AOV",
	"GET /v1/workflows/{id}":                 "AOV",
	"POST /v1/workflows/{id}/cancel":         "AO",
	"POST /v1/workflows/{id}/retry":          "AO",
	"POST /v1/workflows/{id}/priority":       "AO",
	"GET /v1/workflows/{id}/logs":            "AOV",
	"POST /v1/worker/claims":                 "AP",
	"GET /v1/worker/instances/{id}":          "AP",
	"POST /v1/worker/instances/{id}/advance": "AP",
	"POST /v1/worker/advances":               "AP",
	"POST /v1/worker/heartbeats":             "AP",
	"POST /v1/worker/releases":               "AP",
	"POST /v1/leases/acquire":                "APT",
	"POST /v1/leases/release":                "APT",
	"GET /v1/leases":                         "AOVPT",
	"POST /v1/triggers/{name}/fire":          "AT",
	"POST /v1/triggers/{name}/observe":       "AT",
	"POST /v1/triggers/{name}/error":         "AT",
	"GET /v1/triggers":                       "AOV",
	"GET /v1/triggers/{name}":                "AOVT",
	"GET /v1/triggers/{name}/records":        "AOV",
	"POST /v1/triggers/{name}/pause":         "AO",
	"POST /v1/triggers/{name}/resume":        "AO",
	"POST /v1/triggers/{name}/fire-now":      "AO",
	"GET /v1/alerts":                         "AOV",
	"POST /v1/alerts/test":                   "AO",
	"POST /v1/tokens":                        "A",
	"GET /v1/tokens":                         "A",
	"DELETE /v1/tokens/{name}":               "A",
	"GET /v1/audit":                          "A",
}

var roleLetters = map[model.Role]string{
	model.RoleAdmin: "A", model.RoleOperator: "O", model.RoleViewer: "V", model.RoleProcessor: "P", model.RoleTrigger: "T",
}

// authServer serves the API on a fresh SQLite store holding one token per
// role (named for the role), plus the shared token when shared is set. It
// returns the URL, the secrets by role and the API.
func authServer(t *testing.T, shared string) (string, map[model.Role]string, *api.API) {
	t.Helper()
	return apiServer(t, true, func(c *api.Config) { c.Token = shared })
}

// apiServer serves the API on a fresh SQLite store, with one token per
// role when tokens is set, on the configuration as set changes it.
func apiServer(t *testing.T, tokens bool, set func(*api.Config)) (string, map[model.Role]string, *api.API) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := coredb.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "dpe.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[model.Role]string{}
	for _, r := range model.Roles {
		if !tokens {
			break
		}
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
	alerts := alert.New(alert.Options{Store: st.(alert.Store), Log: log})
	cfg := api.Config{Jobs: js, Flows: flows, Triggers: trig, Alerts: alerts, Store: st, Log: log, Profiling: true}
	set(&cfg)
	h := api.New(cfg)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		hub.Close()
		srv.Close()
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return srv.URL, secrets, h
}

// concrete turns a route pattern into a path to call: {id} is 1, {name}
// is x, and the profiles run for a second.
func concrete(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.NewReplacer("{id}", "1", "{name}", "x").Replace(path)
	if strings.HasSuffix(path, "/profile") || strings.HasSuffix(path, "/trace") {
		path += "?seconds=1"
	}
	return method, path
}

// TestRoleMatrix calls every route the API registers with no token, a bad
// token and a token of each role: 401, 401, then 403 for a role the route
// does not allow and anything but 401/403 for one it does. The expected
// roles come from wantRoles, so a new route needs a line there and a rule
// in the API.
func TestRoleMatrix(t *testing.T) {
	url, secrets, h := authServer(t, "")
	routes := h.Routes()
	var registered []string
	for _, r := range routes {
		registered = append(registered, r.Pattern)
		if r.Roles == nil {
			t.Errorf("route %q has no role rule in the API", r.Pattern)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(wantRoles)) {
		if !slices.Contains(registered, p) {
			t.Errorf("route %q is expected but the API does not register it", p)
		}
	}
	for _, p := range registered {
		want, ok := wantRoles[p]
		if !ok {
			t.Errorf("route %q is registered but has no line in wantRoles", p)
			continue
		}
		method, path := concrete(p)
		body := ""
		if method != "GET" && method != "DELETE" {
			body = "{}"
		}
		t.Run(p, func(t *testing.T) {
			for _, bad := range []string{"", "Bearer dpe_nope", "Basic YTpi", "Bearer " + secrets[model.RoleAdmin] + "x"} {
				hdr := map[string]string{}
				if bad != "" {
					hdr["Authorization"] = bad
				}
				a := call(t, method, url+path, body, hdr)
				if a.status != 401 {
					t.Errorf("Authorization %q: status %d, want 401: %s", bad, a.status, a.body)
				}
				if a.header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
			}
			for _, r := range model.Roles {
				a := call(t, method, url+path, body, map[string]string{"Authorization": "Bearer " + secrets[r]})
				allowed := strings.Contains(want, roleLetters[r])
				switch {
				case allowed && (a.status == 401 || a.status == 403):
					t.Errorf("%s: status %d, want allowed: %s", r, a.status, a.body)
				case !allowed && a.status != 403:
					t.Errorf("%s: status %d, want 403: %s", r, a.status, a.body)
				case !allowed:
					if p := asProblem(t, a); p.Detail == "" || strings.Contains(p.Detail, string(r)) {
						t.Errorf("%s: 403 detail %q: want a reason that does not echo the role", r, p.Detail)
					}
				}
			}
		})
	}
}

// TestOpenRoutes: with auth on, /healthz and /readyz still need no token.
func TestOpenRoutes(t *testing.T) {
	url, _, _ := authServer(t, "")
	must(t, 200, "GET", url+"/healthz", "", nil)
	must(t, 200, "GET", url+"/readyz", "", nil)
	must(t, 401, "GET", url+"/metrics", "", nil)
}

// TestTokens: the shared token is an admin; a token created through the
// API works at once and stops at once when revoked here; names are
// unique and checked; no token is needed while none exists.
func TestTokens(t *testing.T) {
	url, secrets, _ := authServer(t, "shared-secret")
	adminHdr := map[string]string{"Authorization": "Bearer shared-secret"}
	created := must(t, 201, "POST", url+"/v1/tokens", `{"name":"ops-1","role":"operator"}`, adminHdr).object(t)
	secret, _ := created["secret"].(string)
	if !strings.HasPrefix(secret, token.Prefix) || len(secret) < 40 {
		t.Fatalf("secret %q: want %s and 256 bits", secret, token.Prefix)
	}
	opHdr := map[string]string{"Authorization": "Bearer " + secret}
	must(t, 200, "GET", url+"/v1/jobs", "", opHdr)
	must(t, 403, "GET", url+"/v1/tokens", "", opHdr)
	list := must(t, 200, "GET", url+"/v1/tokens", "", adminHdr)
	if strings.Contains(string(list.body), secret) || strings.Contains(string(list.body), "hash") {
		t.Fatalf("token list shows a secret or hash: %s", list.body)
	}
	if p := asProblem(t, must(t, 409, "POST", url+"/v1/tokens", `{"name":"ops-1","role":"viewer"}`, adminHdr)); p.Detail == "" {
		t.Errorf("duplicate name: %+v", p)
	}
	for _, bad := range []string{`{"name":"","role":"viewer"}`, `{"name":"a b","role":"viewer"}`, `{"name":"x","role":"root"}`} {
		must(t, 422, "POST", url+"/v1/tokens", bad, adminHdr)
	}
	must(t, 204, "DELETE", url+"/v1/tokens/ops-1", "", map[string]string{"Authorization": "Bearer " + secrets[model.RoleAdmin]})
	must(t, 401, "GET", url+"/v1/jobs", "", opHdr)
	must(t, 404, "DELETE", url+"/v1/tokens/ops-1", "", adminHdr)
}

// TestExecNeedsAdmin (finding 7): an operator may submit jobs but not
// exec; an admin's exec job passes the role check.
func TestExecNeedsAdmin(t *testing.T) {
	url, secrets, _ := authServer(t, "")
	op := map[string]string{"Authorization": "Bearer " + secrets[model.RoleOperator]}
	ad := map[string]string{"Authorization": "Bearer " + secrets[model.RoleAdmin]}
	exec := `{"type":"exec","params":{"argv":["cat","/etc/hostname"]}}`
	must(t, 403, "POST", url+"/v1/jobs", exec, op)
	must(t, 403, "POST", url+"/v1/jobs/batch", `{"jobs":[{"type":"noop"},`+exec+`]}`, op)
	must(t, 201, "POST", url+"/v1/jobs", `{"type":"noop"}`, op)
	if a := call(t, "POST", url+"/v1/jobs", exec, ad); a.status == 401 || a.status == 403 {
		t.Fatalf("admin exec: %d %s", a.status, a.body)
	}
	if n, _ := must(t, 200, "GET", url+"/v1/jobs?type=exec", "", ad).object(t)["total"].(float64); n > 1 {
		t.Fatalf("%v exec jobs, want at most the admin's", n)
	}
}

// TestExecTemplateNeedsAdmin: an operator may import templates, but not
// one whose steps (however nested) run exec; an admin may.
func TestExecTemplateNeedsAdmin(t *testing.T) {
	url, secrets, _ := authServer(t, "")
	yaml := map[string]string{"Content-Type": "application/yaml"}
	as := func(r model.Role) map[string]string {
		h := maps.Clone(yaml)
		h["Authorization"] = "Bearer " + secrets[r]
		return h
	}
	src := "name: sneaky\nsteps:\n  - if: \"true\"\n    then:\n      - {id: x, job: exec, params: {argv: [cat, /etc/hostname]}}\n"
	p := asProblem(t, must(t, 403, "POST", url+"/v1/templates", src, as(model.RoleOperator)))
	if p.Field == "" {
		t.Errorf("403 does not name the step: %+v", p)
	}
	must(t, 201, "POST", url+"/v1/templates", "name: fine\nsteps:\n  - {id: n, job: noop}\n", as(model.RoleOperator))
	must(t, 201, "POST", url+"/v1/templates", src, as(model.RoleAdmin))
}

// TestFireUnknownTrigger (finding 7): firing a trigger that does not
// exist (which creates it) needs a trigger or admin token; an operator's
// is refused and creates nothing. A trigger token limited to patterns
// reaches only the triggers they match.
func TestFireUnknownTrigger(t *testing.T) {
	url, secrets, _ := authServer(t, "")
	hdr := func(secret string) map[string]string { return map[string]string{"Authorization": "Bearer " + secret} }
	body := `{"kind":"schedule","fires":[]}`
	for _, r := range []model.Role{model.RoleOperator, model.RoleViewer, model.RoleProcessor} {
		must(t, 403, "POST", url+"/v1/triggers/nope/fire", body, hdr(secrets[r]))
	}
	must(t, 404, "GET", url+"/v1/triggers/nope", "", hdr(secrets[model.RoleAdmin]))

	created := must(t, 201, "POST", url+"/v1/tokens", `{"name":"nightly","role":"trigger","triggers":["nightly-*"]}`, hdr(secrets[model.RoleAdmin])).object(t)
	scoped, _ := created["secret"].(string)
	must(t, 200, "POST", url+"/v1/triggers/nightly-purge/fire", body, hdr(scoped))
	must(t, 200, "GET", url+"/v1/triggers/nightly-purge", "", hdr(scoped))
	must(t, 403, "POST", url+"/v1/triggers/inbox/fire", body, hdr(scoped))
	must(t, 403, "POST", url+"/v1/triggers/inbox/observe", `{}`, hdr(scoped))
	must(t, 403, "GET", url+"/v1/triggers/inbox", "", hdr(scoped))
	must(t, 404, "GET", url+"/v1/triggers/inbox", "", hdr(secrets[model.RoleAdmin]))
	// Patterns are for trigger tokens only, and must be patterns.
	must(t, 422, "POST", url+"/v1/tokens", `{"name":"x","role":"viewer","triggers":["a"]}`, hdr(secrets[model.RoleAdmin]))
	must(t, 422, "POST", url+"/v1/tokens", `{"name":"y","role":"trigger","triggers":["[a"]}`, hdr(secrets[model.RoleAdmin]))
	// An unlimited trigger token may create any trigger.
	must(t, 200, "POST", url+"/v1/triggers/nope/fire", body, hdr(secrets[model.RoleTrigger]))
}
