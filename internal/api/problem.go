package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/template"
	"github.com/dpe-engine/dpe/internal/wire"
)

// writeJSON writes v with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"title":"cannot encode answer","status":500}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeProblem writes an RFC 9457 problem+json answer.
func writeProblem(w http.ResponseWriter, p wire.Problem) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	b, _ := json.Marshal(p)
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError maps an error to its problem: invalid input 422 naming the
// field, not found 404, conflict 409, database unavailable 503 (the client
// retries), anything else 500 (logged, detail hidden).
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var fe *model.FieldError
	var ve *template.ValidationError
	switch {
	case errors.As(err, &ve):
		p := wire.Problem{Title: "invalid template", Status: http.StatusUnprocessableEntity, Detail: ve.Error()}
		for _, x := range ve.Problems {
			p.Errors = append(p.Errors, wire.Issue{Line: x.Line, Step: x.Step, Field: x.Field, Reason: x.Reason})
		}
		if len(ve.Problems) > 0 {
			p.Field = ve.Problems[0].Field
		}
		writeProblem(w, p)
	case errors.As(err, &fe):
		writeProblem(w, wire.Problem{Title: "invalid input", Status: http.StatusUnprocessableEntity, Detail: fe.Error(), Field: fe.Field})
	case errors.Is(err, model.ErrInvalid):
		writeProblem(w, wire.Problem{Title: "invalid input", Status: http.StatusUnprocessableEntity, Detail: err.Error()})
	case errors.Is(err, model.ErrNotFound):
		writeProblem(w, wire.Problem{Title: "not found", Status: http.StatusNotFound, Detail: notFoundText(r, err)})
	case errors.Is(err, model.ErrConflict):
		writeProblem(w, wire.Problem{Title: "conflict", Status: http.StatusConflict, Detail: userText(err)})
	case errors.Is(err, model.ErrUnavailable):
		w.Header().Set("Retry-After", "1")
		writeProblem(w, wire.Problem{Title: "core database unavailable", Status: http.StatusServiceUnavailable, Detail: err.Error()})
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads this answer.
		writeProblem(w, wire.Problem{Title: "request canceled", Status: 499})
	default:
		a.log.LogAttrs(r.Context(), slog.LevelError, "request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("err", err.Error()))
		writeProblem(w, wire.Problem{Title: "internal error", Status: http.StatusInternalServerError, Detail: "see the server log, request id " + w.Header().Get("X-Request-Id")})
	}
}

// nouns name what a route's {id} or {name} is, by the path segment after
// /v1/.
var nouns = map[string]string{
	"jobs": "job", "workflows": "workflow instance", "templates": "template",
	"triggers": "trigger", "types": "job type", "processors": "processor",
	"worker": "workflow instance",
}

// notFoundText says what was not found in a user's words, e.g. "job 9999
// not found", from the route's path value; for a route without one, the
// error's text without the store's engine and operation names.
func notFoundText(r *http.Request, err error) string {
	key := r.PathValue("id")
	if key == "" {
		key = r.PathValue("name")
	}
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/v1/"), "/")
	if noun, ok := nouns[parts[0]]; ok && key != "" {
		return noun + " " + key + " not found"
	}
	return userText(err)
}

// engineOps matches what the stores put on their errors ("sqlite: get
// job: ", "postgres: cancel job: "): engine internals a user has no use for.
var engineOps = regexp.MustCompile(`\b(sqlite|postgres): [a-z][a-z ]*: `)

// userText is an error's text without the stores' engine and operation
// names, and without the trailing sentinel (": conflict") the status says
// already.
func userText(err error) string {
	s := engineOps.ReplaceAllString(err.Error(), "")
	for _, sentinel := range []error{model.ErrConflict, model.ErrNotFound} {
		s = strings.TrimSuffix(s, ": "+sentinel.Error())
	}
	return s
}

// refusal maps the error of one item of a batch call to the status that
// item gets: 409 (conflict: a stale epoch, a lost lease, a busy key), 404
// or 422. ok is false for any other error, which fails the whole call.
func refusal(err error) (status int, ok bool) {
	switch {
	case errors.Is(err, model.ErrConflict):
		return http.StatusConflict, true
	case errors.Is(err, model.ErrNotFound):
		return http.StatusNotFound, true
	case errors.Is(err, model.ErrInvalid):
		return http.StatusUnprocessableEntity, true
	}
	return 0, false
}

// created sets the Location of a resource a call created (201).
func created(w http.ResponseWriter, path string) {
	w.Header().Set("Location", path)
}
