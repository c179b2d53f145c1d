package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/template"
	"github.com/dpe-engine/dpe/internal/token"
	"github.com/dpe-engine/dpe/internal/wire"
)

// Principal is who made a request: the token's name and role.
type Principal struct {
	Name string
	Role model.Role
	// Triggers limits a trigger token to these trigger name patterns.
	Triggers []string
	// Types limits a processor token to these job type patterns.
	Types []string
}

type principalKey struct{}

// PrincipalOf returns the caller of a request served by the API (false
// when auth is off: no credentials exist).
func PrincipalOf(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Route is one registered route and the roles that may call it.
type Route struct {
	Pattern string
	// Roles may call the route. Nil: the route has no rule in routeRoles,
	// which is a bug (only admin may call it, and TestRoleMatrix fails).
	Roles []model.Role
}

var (
	admin     = model.RoleAdmin
	operator  = model.RoleOperator
	viewer    = model.RoleViewer
	processor = model.RoleProcessor
	trig      = model.RoleTrigger

	readers   = []model.Role{admin, operator, viewer}
	operators = []model.Role{admin, operator}
	admins    = []model.Role{admin}
	holders   = []model.Role{admin, processor}
	firers    = []model.Role{admin, trig}
)

// routeRoles is who may call each route (DESIGN §7). viewer reads;
// operator reads, starts, cancels and prioritises work and imports
// templates; processor claims and reports jobs and drives workflow
// instances (the workflow worker holds a processor token); trigger fires,
// observes and holds standby leases; admin does everything, tokens, type
// limits, template deletion and exec jobs included. /healthz and /readyz
// need no token.
var routeRoles = map[string][]model.Role{
	"GET /metrics":                           readers,
	"GET /debug/pprof/":                      admins,
	"GET /debug/pprof/cmdline":               admins,
	"GET /debug/pprof/profile":               admins,
	"GET /debug/pprof/symbol":                admins,
	"GET /debug/pprof/trace":                 admins,
	"GET /v1/status":                         model.Roles,
	"POST /v1/jobs":                          operators,
	"POST /v1/jobs/batch":                    operators,
	"GET /v1/jobs":                           readers,
	"GET /v1/jobs/{id}":                      readers,
	"POST /v1/jobs/{id}/cancel":              operators,
	"POST /v1/jobs/{id}/retry":               operators,
	"POST /v1/jobs/{id}/priority":            operators,
	"POST /v1/jobs/{id}/progress":            holders,
	"POST /v1/jobs/{id}/complete":            holders,
	"POST /v1/completions":                   holders,
	"POST /v1/jobs/{id}/release":             holders,
	"GET /v1/jobs/{id}/logs":                 readers,
	"POST /v1/jobs/{id}/logs":                holders,
	"POST /v1/claims":                        holders,
	"POST /v1/heartbeats":                    holders,
	"PUT /v1/processors/{id}":                holders,
	"GET /v1/processors":                     readers,
	"GET /v1/types":                          readers,
	"PUT /v1/types/{name}":                   admins,
	"POST /v1/templates":                     operators,
	"GET /v1/templates":                      {admin, operator, viewer, processor}, // workers read templates
	"GET /v1/templates/{name}":               {admin, operator, viewer, processor}, // workers read templates
	"DELETE /v1/templates/{name}":            admins,
	"POST /v1/workflows":                     operators,
	"POST /v1/workflows/batch":               operators,
	"GET /v1/workflows":                      readers,
	"GET /v1/workflows/{id}":                 readers,
	"POST /v1/workflows/{id}/cancel":         operators,
	"POST /v1/workflows/{id}/retry":          operators,
	"POST /v1/workflows/{id}/priority":       operators,
	"GET /v1/workflows/{id}/logs":            readers,
	"POST /v1/worker/claims":                 holders,
	"GET /v1/worker/instances/{id}":          holders,
	"POST /v1/worker/instances/{id}/advance": holders,
	"POST /v1/worker/advances":               holders,
	"POST /v1/worker/heartbeats":             holders,
	"POST /v1/worker/releases":               holders,
	"POST /v1/leases/acquire":                {admin, processor, trig},
	"POST /v1/leases/release":                {admin, processor, trig},
	"GET /v1/leases":                         {admin, operator, viewer, processor, trig},
	"POST /v1/triggers/{name}/fire":          firers,
	"POST /v1/triggers/{name}/observe":       firers,
	"POST /v1/triggers/{name}/error":         firers,
	"GET /v1/triggers":                       readers,
	"GET /v1/triggers/{name}":                {admin, operator, viewer, trig},
	"GET /v1/triggers/{name}/records":        readers,
	"POST /v1/triggers/{name}/pause":         operators,
	"POST /v1/triggers/{name}/resume":        operators,
	"POST /v1/triggers/{name}/fire-now":      operators,
	"GET /v1/alerts":                         readers,
	"POST /v1/alerts/test":                   operators,
	"POST /v1/tokens":                        admins,
	"GET /v1/tokens":                         admins,
	"DELETE /v1/tokens/{name}":               admins,
	"GET /v1/audit":                          admins,
}

// adminJobTypes may be submitted directly only by an admin: they run
// programs.
var adminJobTypes = []string{"exec"}

// tokenCacheTTL bounds how long a looked-up token is trusted without
// asking the store again: a revoked token stops working within it on every
// server.
const tokenCacheTTL = 2 * time.Second

// authenticator checks bearer tokens: the shared --token (an admin) and
// the tokens of the core DB. Auth is on once any exists; until then every
// request is served as before (a development set-up), and the first token
// created switches it on for good.
type authenticator struct {
	shared []byte // SHA-256 of the shared token; nil: none
	store  store.TokenStore
	now    func() time.Time

	mu       sync.Mutex
	on       bool
	known    bool // the store answered whether tokens exist at least once
	checking bool // a request is asking the store
	checked  time.Time
	cache    map[[sha256.Size]byte]cachedToken
}

type cachedToken struct {
	p     Principal
	until time.Time
}

func newAuthenticator(shared string, st store.TokenStore, now func() time.Time) *authenticator {
	a := &authenticator{store: st, now: now, cache: map[[sha256.Size]byte]cachedToken{}}
	if shared != "" {
		a.shared = token.Hash(shared)
		a.on = true
	}
	return a
}

// enabled reports whether requests need a token. While none is known it
// asks the store at most once per tokenCacheTTL, outside the lock (other
// requests meanwhile use the last answer). Before the first answer a
// store error is returned (503: the server cannot tell whether to demand
// a token); after it, an error keeps the last answer, so a core database
// restart is ridden out with 503s from the routes rather than 401s that
// clients would not retry.
func (a *authenticator) enabled(ctx context.Context) (bool, error) {
	a.mu.Lock()
	if a.on || a.store == nil {
		on := a.on
		a.mu.Unlock()
		return on, nil
	}
	now := a.now()
	if a.known && (a.checking || now.Sub(a.checked) < tokenCacheTTL) {
		a.mu.Unlock()
		return false, nil
	}
	a.checking = true
	a.mu.Unlock()
	n, err := a.store.TokenCount(ctx)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.checking = false
	if err != nil {
		if a.known {
			return a.on, nil
		}
		return false, fmt.Errorf("auth: are there tokens: %w", err)
	}
	a.known, a.checked = true, now
	if n > 0 {
		a.on = true
	}
	return a.on, nil
}

// markOn switches auth on (a token was just created here).
func (a *authenticator) markOn() {
	a.mu.Lock()
	a.on = true
	a.mu.Unlock()
}

// errNoToken: no credential, an unknown or a revoked one.
var errNoToken = errors.New("unauthorized")

// principal returns the caller of r.
func (a *authenticator) principal(ctx context.Context, r *http.Request) (Principal, error) {
	h := r.Header.Get("Authorization")
	scheme, secret, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, errNoToken
	}
	return a.principalOf(ctx, secret)
}

// principalOf returns the holder of the bearer token secret.
func (a *authenticator) principalOf(ctx context.Context, secret string) (Principal, error) {
	if secret == "" || len(secret) > 256 {
		return Principal{}, errNoToken
	}
	sum := sha256.Sum256([]byte(secret))
	if a.shared != nil && subtle.ConstantTimeCompare(sum[:], a.shared) == 1 {
		return Principal{Name: "shared-token", Role: model.RoleAdmin}, nil
	}
	if a.store == nil {
		return Principal{}, errNoToken
	}
	now := a.now()
	a.mu.Lock()
	c, hit := a.cache[sum]
	a.mu.Unlock()
	if hit && now.Before(c.until) {
		return c.p, nil
	}
	t, err := a.store.TokenByHash(ctx, sum[:])
	if errors.Is(err, model.ErrNotFound) {
		return Principal{}, errNoToken
	}
	if err != nil {
		return Principal{}, err
	}
	// The lookup is by hash, and the hash is compared again in constant
	// time: the store's index must not be the only check.
	if subtle.ConstantTimeCompare(t.Hash, sum[:]) != 1 {
		return Principal{}, errNoToken
	}
	p := Principal{Name: t.Name, Role: t.Role, Triggers: t.Triggers, Types: t.Types}
	a.mu.Lock()
	if len(a.cache) > 10000 {
		clear(a.cache)
	}
	a.cache[sum] = cachedToken{p: p, until: now.Add(tokenCacheTTL)}
	a.mu.Unlock()
	return p, nil
}

// ErrAuthOff: the server requires no token (it has no credential at all).
var ErrAuthOff = errors.New("the server requires no token")

// ErrBadToken: an unknown or revoked token.
var ErrBadToken = errNoToken

// TokenPrincipal names the token's holder and role, for a login (the web
// monitor's session): ErrAuthOff when the server requires no token,
// ErrBadToken for an unknown or revoked one.
func (a *API) TokenPrincipal(ctx context.Context, secret string) (Principal, error) {
	on, err := a.authn.enabled(ctx)
	if err != nil {
		return Principal{}, err
	}
	if !on {
		return Principal{}, ErrAuthOff
	}
	return a.authn.principalOf(ctx, secret)
}

// forget drops the cache (a token was revoked here).
func (a *authenticator) forget() {
	a.mu.Lock()
	clear(a.cache)
	a.mu.Unlock()
}

// authorize wraps h with the route's role rule. It answers before reading
// the body: 401 (with Connection: close, so the server does not wait for a
// slow body it will never use) or 403, neither saying more.
func (a *API) authorize(pattern string, h http.Handler) http.Handler {
	roles := routeRoles[pattern]
	if roles == nil {
		roles = admins
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		on, err := a.authn.enabled(r.Context())
		if err != nil {
			refuse(w)
			a.writeError(w, r, err)
			return
		}
		if !on {
			noteAuthOff(r.Context())
			h.ServeHTTP(w, r)
			return
		}
		p, err := a.authn.principal(r.Context(), r)
		if err != nil {
			refuse(w)
			if errors.Is(err, errNoToken) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="dpe"`)
				writeProblem(w, wire.Problem{Title: "unauthorized", Status: http.StatusUnauthorized, Detail: "send Authorization: Bearer TOKEN (dpe --token, --token-file or DPE_TOKEN)"})
				return
			}
			a.writeError(w, r, err)
			return
		}
		noteCaller(r.Context(), p) // for the audit trail, refused or not
		if slices.Contains(a.certRoles, p.Role) && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			refuse(w)
			writeProblem(w, wire.Problem{Title: "forbidden", Status: http.StatusForbidden, Detail: "this token needs a client certificate (mutual TLS)"})
			return
		}
		if !slices.Contains(roles, p.Role) || !mayUseTrigger(pattern, p, r) {
			refuse(w)
			writeProblem(w, wire.Problem{Title: "forbidden", Status: http.StatusForbidden, Detail: "the token's role may not call this route"})
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// mayUseTrigger: a trigger token with patterns reaches only the triggers
// they match on the /v1/triggers/{name} routes, so a scheduler's token
// cannot fire (and so create) a trigger that is not its own.
func mayUseTrigger(pattern string, p Principal, r *http.Request) bool {
	if p.Role != model.RoleTrigger || !strings.Contains(pattern, "/v1/triggers/{name}") {
		return true
	}
	return token.MayUseTrigger(p.Triggers, r.PathValue("name"))
}

// mayRunTypes answers 403 and false when the caller may not submit jobs
// of one of the types (exec needs an admin).
func mayRunTypes(w http.ResponseWriter, r *http.Request, types ...string) bool {
	p, ok := PrincipalOf(r.Context())
	if !ok || p.Role == model.RoleAdmin {
		return true
	}
	for _, t := range types {
		if slices.Contains(adminJobTypes, t) {
			writeProblem(w, wire.Problem{Title: "forbidden", Status: http.StatusForbidden, Detail: "only an admin token may submit " + t + " jobs", Field: "type"})
			return false
		}
	}
	return true
}

// mayImport answers 403 and false when a caller other than an admin
// imports a template with a job step of an admin-only type (exec): an
// operator may start templates, but not write the programs they run.
// A template that does not parse is left to the import to refuse.
func mayImport(w http.ResponseWriter, r *http.Request, src []byte) bool {
	p, ok := PrincipalOf(r.Context())
	if !ok || p.Role == model.RoleAdmin {
		return true
	}
	t, err := template.Parse(src, template.ParseOptions{})
	if err != nil {
		return true
	}
	var bad string
	var walk func(as []*template.Activity)
	walk = func(as []*template.Activity) {
		for _, a := range as {
			if a.Kind == template.KindJob && slices.Contains(adminJobTypes, a.JobType) && bad == "" {
				bad = a.Path
			}
			for _, b := range a.Blocks() {
				walk(b.Steps)
			}
		}
	}
	walk(t.Steps)
	if bad == "" {
		return true
	}
	writeProblem(w, wire.Problem{Title: "forbidden", Status: http.StatusForbidden, Detail: "only an admin token may import a template whose steps run exec jobs", Field: bad})
	return false
}

// guard refuses what a web page in an operator's browser could send to a
// server it can reach (CSRF, DNS rebinding): on a mutating request, a body
// in a type other than JSON (or YAML where the route takes it) is 415, an
// Origin other than the server's own is 403, and, when the server checks
// hosts, a Host header it does not answer to is 421.
func (a *API) guard(pattern string, h http.Handler) http.Handler {
	yaml := pattern == "POST /v1/templates"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
			h.ServeHTTP(w, r)
			return
		}
		if !a.hostAllowed(r.Host) {
			refuse(w)
			writeProblem(w, wire.Problem{Title: "misdirected request", Status: http.StatusMisdirectedRequest, Detail: "this server does not answer to that Host"})
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r) {
			refuse(w)
			writeProblem(w, wire.Problem{Title: "forbidden", Status: http.StatusForbidden, Detail: "cross-origin requests are refused"})
			return
		}
		hasBody := r.ContentLength != 0 // -1: chunked
		ct := r.Header.Get("Content-Type")
		if ct != "" || hasBody {
			mt, _, err := mime.ParseMediaType(ct)
			ok := err == nil && (mt == "application/json" || mt == "application/problem+json" ||
				yaml && (mt == "application/yaml" || mt == "application/x-yaml" || mt == "text/yaml" || mt == "text/x-yaml"))
			if !ok {
				refuse(w)
				detail := "send the body as application/json"
				if yaml {
					detail = "send the template as application/yaml or application/json"
				}
				writeProblem(w, wire.Problem{Title: "unsupported media type", Status: http.StatusUnsupportedMediaType, Detail: detail})
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether the Origin header names the server as the
// request reached it (scheme aside: a proxy may terminate TLS).
func sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// hostAllowed: with CheckHost off every Host is served; on, only IP
// literals, localhost names and Config.Hosts.
func (a *API) hostAllowed(hostport string) bool {
	if !a.checkHost {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "" {
		return false
	}
	if net.ParseIP(host) != nil || host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	return slices.Contains(a.hosts, host)
}

// Routes returns every registered route behind a token, with its roles.
func (a *API) Routes() []Route {
	out := make([]Route, len(a.registered))
	for i, p := range a.registered {
		out[i] = Route{Pattern: p, Roles: routeRoles[p]}
	}
	return out
}

// refuse marks a request that is answered without its body: the
// connection closes after the answer, and its read deadline passes now, so
// the server does not wait (up to its read timeout) for a body it will
// never use, sent slowly by a client that may not even hold a token.
func refuse(w http.ResponseWriter) {
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}
