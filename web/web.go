// Package web serves the monitor: a single page of plain HTML, CSS and
// JavaScript modules embedded in the binary (no CDN, no build step), in
// front of the /v1 API that the page calls with fetch. It also turns a
// token into a session cookie for the browser (see session.go), so the
// page never holds the token in script-readable storage.
package web

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strings"

	"github.com/dpe-engine/dpe/internal/model"
)

//go:embed static
var static embed.FS

// TokenCheck validates a bearer token and names its holder (the token's
// name) and role ("admin", "operator", "viewer", ...). It returns an error
// wrapping ErrBadToken for an unknown or revoked token; any other error is
// a failure to check.
type TokenCheck func(ctx context.Context, token string) (name, role string, err error)

// AuditFunc records one entry in the audit trail without waiting for the
// write (the API's RecordAudit).
type AuditFunc func(e model.AuditEntry)

// ErrBadToken is the refusal of a token by a TokenCheck.
var ErrBadToken = errors.New("unknown or revoked token")

// ErrNoLogin is a TokenCheck's answer when the server requires no token at
// the moment (no credential exists yet): the monitor works without login.
var ErrNoLogin = errors.New("the server requires no token")

// Config configures the monitor.
type Config struct {
	// API serves everything that is not the monitor's (/v1, /metrics,
	// /healthz, ...). Requests carrying the session cookie reach it with
	// the cookie's token as their bearer token.
	API http.Handler
	// Check validates tokens at login; nil: no token is configured and
	// the monitor works without login.
	Check TokenCheck
	// Audit records each login (POST /v1/session), accepted or refused,
	// in the audit trail; nil: logins are only logged.
	Audit AuditFunc
	Log   *slog.Logger
}

// Handler serves the monitor's pages and sessions and passes every other
// request to the API.
type Handler struct {
	api    http.Handler
	check  TokenCheck
	audit  AuditFunc
	log    *slog.Logger
	assets map[string]asset // by URL path
}

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// New returns the monitor handler in front of cfg.API.
func New(cfg Config) (*Handler, error) {
	if cfg.API == nil {
		return nil, errors.New("web: no API handler")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	h := &Handler{api: cfg.API, check: cfg.Check, audit: cfg.Audit, log: cfg.Log, assets: map[string]asset{}}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // the system's MIME table may lack or differ on these
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".svg":
			ct = "image/svg+xml"
		}
		if ct == "" {
			return fmt.Errorf("web: no content type for %s", p)
		}
		sum := sha256.Sum256(b)
		h.assets["/"+strings.TrimPrefix(p, "static/")] = asset{body: b, contentType: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: read embedded assets: %w", err)
	}
	if _, ok := h.assets["/index.html"]; !ok {
		return nil, errors.New("web: no index.html embedded")
	}
	return h, nil
}

// ServeHTTP serves the page at / and its assets under /assets/, the
// session at /v1/session, and passes the rest to the API.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case p == sessionPath:
		h.session(w, r)
	case p == "/" || p == "/index.html":
		h.serveAsset(w, r, "/index.html")
	case strings.HasPrefix(p, "/assets/"):
		h.serveAsset(w, r, strings.TrimPrefix(p, "/assets"))
	default:
		h.toAPI(w, r)
	}
}

// serveAsset answers one embedded file. Names carry no content hash (there
// is no build step), so browsers must revalidate each time (no-cache): the
// ETag makes that a 304 until the server is upgraded.
func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeProblem(w, http.StatusMethodNotAllowed, "method not allowed", "the monitor's files are read with GET")
		return
	}
	a, ok := h.assets[name]
	if !ok || name == "/index.html" && r.URL.Path != "/" && r.URL.Path != "/index.html" {
		writeProblem(w, http.StatusNotFound, "not found", "no such file in the monitor")
		return
	}
	hd := w.Header()
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", a.etag)
	hd.Set("X-Content-Type-Options", "nosniff")
	if name == "/index.html" {
		// Everything the page loads is its own: no inline script, no
		// other origin, no framing (clickjacking of the cancel buttons).
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", a.contentType)
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	_, _ = w.Write(a.body)
}
