package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/wire"
)

// Most mutations are idempotent by their own rules (a job's Key, a
// completion's epoch, cancel and priority by nature). idempotent covers the
// rest: the first answer to an Idempotency-Key is stored and replayed to any
// repeat, so a release or a workflow claim whose answer was lost returns
// the same answer. Job claims keep their key on the claimed jobs instead
// (see claim): no record to read and write around every claim.

// recorder holds an answer back until it is stored, so a server that dies
// between storing and answering leaves a replayable answer, not a claim
// whose jobs nobody knows about.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.status = code }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// send writes the held answer to w.
func (r *recorder) send(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body.Bytes())
}

// maxIdempotencyKey is the longest Idempotency-Key accepted.
const maxIdempotencyKey = 200

// idempotencyKey returns the request's Idempotency-Key ("" for none), or
// the problem of one too long.
func idempotencyKey(r *http.Request) (string, *wire.Problem) {
	key := r.Header.Get("Idempotency-Key")
	if len(key) > maxIdempotencyKey {
		return "", &wire.Problem{Title: "invalid input", Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("Idempotency-Key: at most %d characters", maxIdempotencyKey), Field: "Idempotency-Key"}
	}
	return key, nil
}

// keyLimit refuses an Idempotency-Key over maxIdempotencyKey on every
// route, whether or not the route keeps keys: one rule, before any work.
func keyLimit(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, p := idempotencyKey(r); p != nil {
			writeProblem(w, *p)
			return
		}
		h(w, r)
	}
}

// idempotent stores the first answer to each Idempotency-Key and replays
// it to every repeat of the same request (422 for another request under
// the key). Calls without a key go straight to h.
func (a *API) idempotent(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key, p := idempotencyKey(r)
		if p != nil {
			writeProblem(w, *p)
			return
		}
		if key == "" {
			h(w, r)
			return
		}
		body, p := readBody(w, r, MaxBody)
		if p != nil {
			writeProblem(w, *p)
			return
		}
		sum := sha256.Sum256(append([]byte(r.Method+" "+r.URL.Path+"\n"), body...))
		fp := hex.EncodeToString(sum[:])
		r.Body = io.NopCloser(bytes.NewReader(body))

		key = scopedKey(r, key)
		prev, err := a.store.IdempotencyGet(r.Context(), key)
		switch {
		case err == nil:
			a.replay(w, prev, fp)
			return
		case !errors.Is(err, model.ErrNotFound):
			a.writeError(w, r, err)
			return
		}
		rec := &recorder{header: http.Header{}, status: http.StatusOK}
		h(rec, r)
		// Answers that may differ on retry (server or database trouble) are
		// not stored: the retry must do the work.
		if rec.status < 500 && rec.status != 499 {
			resp := store.Response{Fingerprint: fp, Status: rec.status, Body: rec.body.Bytes()}
			// Stored before it is sent, and even when the caller went away:
			// its retry must find it.
			if _, err := a.store.IdempotencyPut(context.WithoutCancel(r.Context()), key, resp, a.clock.Now()); err != nil {
				a.log.Warn("cannot store idempotent answer", "key", key, "err", err)
			}
		}
		rec.send(w)
	}
}

// scopedKey puts an Idempotency-Key in its caller's key space, as Stripe
// does: the same key sent with another token is another key, so a caller
// can neither read another's stored answer by guessing its key nor spoil
// it. Token names hold no ':', so "role/name:" cannot be forged by a key.
// With no token required there is no caller to bind to.
func scopedKey(r *http.Request, key string) string {
	p, ok := PrincipalOf(r.Context())
	if !ok || key == "" {
		return key
	}
	return string(p.Role) + "/" + p.Name + ":" + key
}

func (a *API) replay(w http.ResponseWriter, prev store.Response, fp string) {
	if prev.Fingerprint != fp {
		writeProblem(w, wire.Problem{Title: "idempotency key reused", Status: http.StatusUnprocessableEntity,
			Detail: "this Idempotency-Key was first used for a different request", Field: "Idempotency-Key"})
		return
	}
	w.Header().Set("Idempotent-Replayed", "true")
	ct := "application/json"
	if prev.Status >= 400 {
		ct = "application/problem+json"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(prev.Status)
	_, _ = w.Write(prev.Body)
}
