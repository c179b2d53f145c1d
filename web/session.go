package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// Session cookies. The session cookie holds the token itself (base64url): any server
// behind a load balancer accepts it without a shared session store, and
// revoking the token ends every session made from it. It is HttpOnly (no
// script reads it) and SameSite=Strict (no other site's page sends it).
// The CSRF cookie is readable by the page, which echoes it in CSRFHeader
// on every mutating call (double submit): a forged request from elsewhere
// cannot read it.
const (
	SessionCookie = "dpe_session"
	CSRFCookie    = "dpe_csrf"
	CSRFHeader    = "X-DPE-CSRF"
	sessionPath   = "/v1/session"
	sessionMaxAge = 12 * time.Hour
)

// Login is the body of POST /v1/session.
type Login struct {
	Token string `json:"token"`
}

// Session is the answer of GET and POST /v1/session.
type Session struct {
	// Required says whether the server requires a token (a login).
	Required bool `json:"required"`
	// Role of the session's token, when Required.
	Role string `json:"role,omitempty"`
}

// session serves /v1/session: GET tells whether a login is needed and the
// role of the current credentials, POST logs in with a token, DELETE logs
// out.
func (h *Handler) session(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		if h.check == nil {
			writeJSON(w, http.StatusOK, Session{})
			return
		}
		tok := bearer(r)
		if tok == "" {
			tok, _ = sessionToken(r)
		}
		_, role, err := h.check(r.Context(), tok)
		if errors.Is(err, ErrNoLogin) {
			writeJSON(w, http.StatusOK, Session{})
			return
		}
		if err != nil {
			h.refuse(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, Session{Required: true, Role: role})
	case http.MethodPost:
		aw := &answerRecorder{ResponseWriter: w, status: http.StatusOK}
		who := h.login(aw, r)
		h.recordLogin(r, aw, who)
	case http.MethodDelete:
		if !h.csrfOK(r) {
			writeProblem(w, http.StatusForbidden, "missing CSRF header", "send the "+CSRFCookie+" cookie's value in "+CSRFHeader)
			return
		}
		secure := isTLS(r)
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
		http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: "", Path: "/", MaxAge: -1, Secure: secure, SameSite: http.SameSiteStrictMode})
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		writeProblem(w, http.StatusMethodNotAllowed, "method not allowed", "")
	}
}

// login checks the token and answers the session cookies. The body must be
// JSON: a cross-site HTML form cannot send that without a CORS preflight,
// so another site cannot log a browser in with its own token.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) loginOf {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeProblem(w, http.StatusUnsupportedMediaType, "unsupported media type", `send {"token": "..."} as application/json`)
		return anon
	}
	var in Login
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeProblem(w, http.StatusBadRequest, "bad body", `send {"token": "..."}: `+err.Error())
		return anon
	}
	if h.check == nil {
		writeJSON(w, http.StatusOK, Session{}) // nothing to log in to
		return noLogin
	}
	in.Token = strings.TrimSpace(in.Token)
	name, role, err := h.check(r.Context(), in.Token)
	if errors.Is(err, ErrNoLogin) {
		writeJSON(w, http.StatusOK, Session{}) // nothing to log in to
		return noLogin
	}
	if err != nil {
		h.refuse(w, r, err)
		return anon
	}
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		writeProblem(w, http.StatusInternalServerError, "cannot make a session", err.Error())
		return anon
	}
	secure, age := isTLS(r), int(sessionMaxAge/time.Second)
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(in.Token)), Path: "/", MaxAge: age, HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: base64.RawURLEncoding.EncodeToString(b[:]), Path: "/", MaxAge: age, Secure: secure, SameSite: http.SameSiteStrictMode})
	h.log.InfoContext(r.Context(), "monitor login", slog.String("principal", name), slog.String("role", role), slog.String("remote", r.RemoteAddr))
	writeJSON(w, http.StatusOK, Session{Required: true, Role: role})
	return loginOf{principal: name, role: role}
}

// loginOf is who a login was made by: the token's name and role once
// accepted, "anonymous" before, "-" when the server requires no token (as
// the API records its calls).
type loginOf struct{ principal, role string }

var (
	anon    = loginOf{principal: "anonymous"}
	noLogin = loginOf{principal: "-"}
)

// loginRoute is how the audit trail names a login.
const loginRoute = http.MethodPost + " " + sessionPath

// recordLogin puts the login answered through aw in the audit trail, as
// the API records its own mutating calls (never the body: it holds the
// token).
func (h *Handler) recordLogin(r *http.Request, aw *answerRecorder, who loginOf) {
	if h.audit == nil {
		return
	}
	outcome := "ok"
	if aw.status >= 400 {
		var p wire.Problem
		if json.Unmarshal(aw.head, &p) == nil && p.Title != "" {
			outcome = p.Title
		} else {
			outcome = strings.ToLower(http.StatusText(aw.status))
		}
	}
	h.audit(model.AuditEntry{
		Principal: who.principal, Role: model.Role(who.role), Method: r.Method, Route: loginRoute,
		Status: aw.status, Remote: r.RemoteAddr, RequestID: aw.Header().Get("X-Request-Id"), Outcome: outcome,
	})
}

// answerRecorder remembers the status and the start of an error answer
// (where a problem's title is).
type answerRecorder struct {
	http.ResponseWriter
	status int
	head   []byte
}

func (w *answerRecorder) WriteHeader(status int) {
	w.status = status
	w.ResponseWriter.WriteHeader(status)
}

func (w *answerRecorder) Write(b []byte) (int, error) {
	if w.status >= 400 && len(w.head) < 1024 {
		w.head = append(w.head, b[:min(len(b), 1024-len(w.head))]...)
	}
	return w.ResponseWriter.Write(b)
}

// refuse answers a failed token check: 401 for a bad token, 503 when the
// check itself failed.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrBadToken) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="dpe"`)
		writeProblem(w, http.StatusUnauthorized, "unauthorized", "log in with a valid token")
		return
	}
	h.log.WarnContext(r.Context(), "monitor token check", slog.Any("err", err))
	writeProblem(w, http.StatusServiceUnavailable, "cannot check the token", err.Error())
}

// toAPI passes a request to the API. A request without an Authorization
// header but with the session cookie is authenticated by the cookie's
// token; when it would change something it must carry the CSRF header.
// Requests with their own Authorization header (the CLI, processors) are
// passed unchanged: a cookie cannot speak for them.
func (h *Handler) toAPI(w http.ResponseWriter, r *http.Request) {
	tok, ok := sessionToken(r)
	if r.Header.Get("Authorization") != "" || !ok {
		h.api.ServeHTTP(w, r)
		return
	}
	if !safeMethod(r.Method) && !h.csrfOK(r) {
		writeProblem(w, http.StatusForbidden, "missing CSRF header", "a cookie-authenticated "+r.Method+" must send the "+CSRFCookie+" cookie's value in "+CSRFHeader)
		return
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	h.api.ServeHTTP(w, r)
}

// sessionToken reads the token of the session cookie. The cookie holds it
// base64url-encoded: a cookie value cannot carry every byte a token may.
func sessionToken(r *http.Request) (string, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(b) == 0 {
		return "", false
	}
	return string(b), true
}

// csrfOK reports whether the request's CSRF header equals its CSRF cookie
// (true when it has no session cookie: nothing to forge then).
func (h *Handler) csrfOK(r *http.Request) bool {
	if c, err := r.Cookie(SessionCookie); err != nil || c.Value == "" {
		return true
	}
	c, err := r.Cookie(CSRFCookie)
	if err != nil || c.Value == "" {
		return false
	}
	return equal(r.Header.Get(CSRFHeader), c.Value)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// isTLS reports whether the browser reached us over TLS, directly or
// through a TLS-terminating load balancer (then the cookie must be Secure
// too; trusting the header can only make the cookie stricter).
func isTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func bearer(r *http.Request) string {
	a := r.Header.Get("Authorization")
	if len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeProblem answers an RFC 9457 problem, as the API does.
func writeProblem(w http.ResponseWriter, status int, title, detail string) {
	b, _ := json.Marshal(wire.Problem{Type: "about:blank", Title: title, Status: status, Detail: detail})
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
