package web_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/web"
)

// fakeAPI stands for the API behind the monitor: it notes the requests
// that reach it.
type fakeAPI struct{ got []*http.Request }

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.got = append(f.got, r)
	w.WriteHeader(http.StatusTeapot)
}

func newMonitor(t *testing.T, check web.TokenCheck) (*web.Handler, *fakeAPI) {
	t.Helper()
	api := &fakeAPI{}
	h, err := web.New(web.Config{API: api, Check: check})
	if err != nil {
		t.Fatal(err)
	}
	return h, api
}

func do(h http.Handler, r *http.Request) *http.Response {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

// TestAssets: the page and its files are served with their content types,
// revalidated on every load (no-cache + ETag, 304 when unchanged), the
// page with a strict content security policy; the rest goes to the API.
func TestAssets(t *testing.T) {
	h, api := newMonitor(t, nil)
	cases := []struct {
		path, ctype, body string
	}{
		{"/", "text/html; charset=utf-8", "<!doctype html>"},
		{"/index.html", "text/html; charset=utf-8", "/assets/js/app.js"},
		{"/assets/js/app.js", "text/javascript; charset=utf-8", "import"},
		{"/assets/js/pages/workflows.js", "text/javascript; charset=utf-8", "export function workflowDetail"},
		{"/assets/style.css", "text/css; charset=utf-8", ":root"},
		{"/assets/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			res := do(h, httptest.NewRequest("GET", c.path, nil))
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != 200 || res.Header.Get("Content-Type") != c.ctype || !strings.Contains(string(body), c.body) {
				t.Fatalf("status %d type %q body %.60q, want 200 %q with %q", res.StatusCode, res.Header.Get("Content-Type"), body, c.ctype, c.body)
			}
			if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache (names carry no hash)", cc)
			}
			if res.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Error("no nosniff")
			}
			tag := res.Header.Get("ETag")
			r := httptest.NewRequest("GET", c.path, nil)
			r.Header.Set("If-None-Match", tag)
			if again := do(h, r); tag == "" || again.StatusCode != http.StatusNotModified {
				t.Errorf("revalidation with ETag %q: status %d, want 304", tag, again.StatusCode)
			}
		})
	}
	page := do(h, httptest.NewRequest("GET", "/", nil))
	if csp := page.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("page CSP %q", csp)
	}
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/assets/nothing.js", 404},
		{"GET", "/assets/index.html", 404},
		{"POST", "/", 405},
	} {
		if res := do(h, httptest.NewRequest(c.method, c.path, nil)); res.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, res.StatusCode, c.status)
		}
	}
	if len(api.got) != 0 {
		t.Fatalf("the API got %d monitor requests", len(api.got))
	}
	for _, p := range []string{"/v1/jobs", "/metrics", "/healthz"} {
		if res := do(h, httptest.NewRequest("GET", p, nil)); res.StatusCode != http.StatusTeapot {
			t.Errorf("GET %s: status %d, want the API's", p, res.StatusCode)
		}
	}
}

func login(t *testing.T, h http.Handler, url, token string) *http.Response {
	t.Helper()
	r := httptest.NewRequest("POST", url, strings.NewReader(`{"token":"`+token+`"}`))
	r.Header.Set("Content-Type", "application/json")
	return do(h, r)
}

func cookies(res *http.Response) map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range res.Cookies() {
		out[c.Name] = c
	}
	return out
}

// TestLogin: a good token is exchanged for an HttpOnly, SameSite=Strict
// session cookie (Secure under TLS) and a readable CSRF cookie; a bad one
// for a 401 and no cookie; a form post is refused.
func TestLogin(t *testing.T) {
	h, _ := newMonitor(t, sharedToken("s3cret"))
	for _, c := range []struct {
		name, url string
		secure    bool
	}{
		{"http", "http://dpe.example/v1/session", false},
		{"https", "https://dpe.example/v1/session", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := login(t, h, c.url, "s3cret")
			if res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
			ck := cookies(res)
			s, x := ck[web.SessionCookie], ck[web.CSRFCookie]
			if s == nil || x == nil {
				t.Fatalf("cookies %v", res.Header.Values("Set-Cookie"))
			}
			if !s.HttpOnly || s.SameSite != http.SameSiteStrictMode || s.Path != "/" || s.Secure != c.secure || s.MaxAge <= 0 {
				t.Errorf("session cookie %q", s.String())
			}
			if x.HttpOnly || x.SameSite != http.SameSiteStrictMode || x.Path != "/" || x.Secure != c.secure || len(x.Value) < 20 {
				t.Errorf("CSRF cookie %q", x.String())
			}
		})
	}
	t.Run("behind a TLS load balancer", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/v1/session", strings.NewReader(`{"token":"s3cret"}`))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Forwarded-Proto", "https")
		if s := cookies(do(h, r))[web.SessionCookie]; s == nil || !s.Secure {
			t.Errorf("session cookie %v, want Secure", s)
		}
	})
	t.Run("bad token", func(t *testing.T) {
		res := login(t, h, "/v1/session", "guess")
		if res.StatusCode != 401 || len(res.Cookies()) != 0 {
			t.Errorf("status %d cookies %v, want 401 and none", res.StatusCode, res.Cookies())
		}
	})
	t.Run("form post", func(t *testing.T) {
		r := httptest.NewRequest("POST", "/v1/session", strings.NewReader(`token=s3cret`))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if res := do(h, r); res.StatusCode != http.StatusUnsupportedMediaType || len(res.Cookies()) != 0 {
			t.Errorf("status %d, want 415 and no cookie", res.StatusCode)
		}
	})
	t.Run("check failure is not a refusal", func(t *testing.T) {
		down, _ := newMonitor(t, func(context.Context, string) (string, string, error) { return "", "", errors.New("db down") })
		if res := login(t, down, "/v1/session", "x"); res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", res.StatusCode)
		}
	})
}

// TestLoginAudit: every login answered, accepted or refused, leaves one
// audit entry naming the token (or "anonymous"), the route and the
// outcome, and never the token itself; a session read leaves none.
func TestLoginAudit(t *testing.T) {
	var got []model.AuditEntry
	h, err := web.New(web.Config{API: &fakeAPI{}, Check: sharedToken("s3cret"), Audit: func(e model.AuditEntry) { got = append(got, e) }})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, token              string
		status                   int
		principal, role, outcome string
	}{
		{"accepted", "s3cret", 200, "shared-token", "admin", "ok"},
		{"refused", "guess", 401, "anonymous", "", "unauthorized"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got = nil
			r := httptest.NewRequest("POST", "/v1/session", strings.NewReader(`{"token":"`+c.token+`"}`))
			r.Header.Set("Content-Type", "application/json")
			r.RemoteAddr = "192.0.2.7:4242"
			if res := do(h, r); res.StatusCode != c.status {
				t.Fatalf("status %d, want %d", res.StatusCode, c.status)
			}
			if len(got) != 1 {
				t.Fatalf("%d audit entries, want 1: %+v", len(got), got)
			}
			e := got[0]
			if e.Principal != c.principal || string(e.Role) != c.role || e.Method != "POST" || e.Route != "POST /v1/session" ||
				e.Status != c.status || e.Outcome != c.outcome || e.Remote != "192.0.2.7:4242" {
				t.Errorf("entry %+v", e)
			}
			if strings.Contains(fmt.Sprintf("%+v", e), c.token) && c.token != "" {
				t.Errorf("entry %+v holds the token", e)
			}
		})
	}
	got = nil
	r := httptest.NewRequest("GET", "/v1/session", nil)
	r.Header.Set("Authorization", "Bearer s3cret")
	if res := do(h, r); res.StatusCode != 200 || len(got) != 0 {
		t.Errorf("session read: status %d, %d audit entries; want 200 and none", res.StatusCode, len(got))
	}
}

// TestSessionRequests: the cookie's token reaches the API as a bearer
// token; a cookie-authenticated mutating call needs the CSRF header equal
// to the CSRF cookie; a request with its own Authorization is untouched.
func TestSessionRequests(t *testing.T) {
	const token = `s3cret; "with" what cookies cannot hold`
	h, api := newMonitor(t, sharedToken(token))
	ck := cookies(login(t, h, "/v1/session", strings.ReplaceAll(token, `"`, `\"`)))
	sess, csrf := ck[web.SessionCookie], ck[web.CSRFCookie]
	if sess == nil || csrf == nil {
		t.Fatal("no session")
	}
	cases := []struct {
		name, method, csrf, auth string
		withCSRFCookie           bool
		status                   int
		bearer                   string // the Authorization the API sees
	}{
		{"read", "GET", "", "", true, 418, "Bearer " + token},
		{"cancel with CSRF", "POST", csrf.Value, "", true, 418, "Bearer " + token},
		{"cancel without CSRF", "POST", "", "", true, 403, ""},
		{"cancel with a wrong CSRF", "POST", "forged", "", true, 403, ""},
		{"cancel without the CSRF cookie", "POST", csrf.Value, "", false, 403, ""},
		{"delete without CSRF", "DELETE", "", "", true, 403, ""},
		{"own bearer token", "POST", "", "Bearer other", true, 418, "Bearer other"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			api.got = nil
			r := httptest.NewRequest(c.method, "/v1/workflows/7/cancel", nil)
			r.AddCookie(sess)
			if c.withCSRFCookie {
				r.AddCookie(csrf)
			}
			if c.csrf != "" {
				r.Header.Set(web.CSRFHeader, c.csrf)
			}
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			res := do(h, r)
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d", res.StatusCode, c.status)
			}
			if c.status == 403 {
				if len(api.got) != 0 {
					t.Fatal("a refused call reached the API")
				}
				if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Errorf("refusal type %q", ct)
				}
				return
			}
			if got := api.got[0].Header.Get("Authorization"); got != c.bearer {
				t.Errorf("API saw Authorization %q, want %q", got, c.bearer)
			}
		})
	}
}

// TestSessionState: GET /v1/session tells the page whether to log in;
// DELETE logs out (with the CSRF header) by expiring both cookies.
func TestSessionState(t *testing.T) {
	open, _ := newMonitor(t, nil)
	res := do(open, httptest.NewRequest("GET", "/v1/session", nil))
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(string(body), `"required":false`) {
		t.Errorf("without a token: %d %s", res.StatusCode, body)
	}

	h, _ := newMonitor(t, sharedToken("s3cret"))
	if res := do(h, httptest.NewRequest("GET", "/v1/session", nil)); res.StatusCode != 401 {
		t.Errorf("no credentials: status %d, want 401", res.StatusCode)
	}
	ck := cookies(login(t, h, "/v1/session", "s3cret"))
	r := httptest.NewRequest("GET", "/v1/session", nil)
	r.AddCookie(ck[web.SessionCookie])
	res = do(h, r)
	body, _ = io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(string(body), `"role":"admin"`) {
		t.Errorf("with the cookie: %d %s", res.StatusCode, body)
	}
	r = httptest.NewRequest("DELETE", "/v1/session", nil)
	r.AddCookie(ck[web.SessionCookie])
	r.AddCookie(ck[web.CSRFCookie])
	r.Header.Set(web.CSRFHeader, ck[web.CSRFCookie].Value)
	res = do(h, r)
	out := cookies(res)
	if res.StatusCode != 204 || out[web.SessionCookie] == nil || out[web.SessionCookie].MaxAge >= 0 || out[web.CSRFCookie] == nil || out[web.CSRFCookie].MaxAge >= 0 {
		t.Errorf("logout: status %d cookies %v", res.StatusCode, res.Header.Values("Set-Cookie"))
	}
}

// sharedToken is a TokenCheck of one admin token, as a server's shared
// --token is checked (the server itself checks through api.TokenRole).
func sharedToken(token string) web.TokenCheck {
	return func(_ context.Context, got string) (string, string, error) {
		if got != token {
			return "", "", web.ErrBadToken
		}
		return "shared-token", "admin", nil
	}
}
