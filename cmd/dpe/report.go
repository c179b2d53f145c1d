package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
)

// report prints the error a command ended with on stderr, as
// "dpe: <what is wrong> (<field>)" with a hint where one helps, and
// returns the exit code (see usage). A notGreenError is not printed: the
// waiter printed the outcome already.
func report(stderr io.Writer, err error) int {
	code := exitCode(err)
	if code == exitOK {
		return code
	}
	var ng notGreenError
	if errors.As(err, &ng) {
		return code
	}
	fmt.Fprintf(stderr, "dpe: %s\n", errorText(err))
	return code
}

// exitCode maps an error to the exit code of the table in usage.
func exitCode(err error) int {
	var ue usageError
	var ng notGreenError
	var ae *client.APIError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ng):
		return exitNotGreen
	case client.Unreachable(err):
		return exitNoServer
	case errors.As(err, &ae):
		if badInput(ae.Status) {
			return exitUsage
		}
		return exitError
	case errors.Is(err, model.ErrNotFound), errors.Is(err, model.ErrInvalid):
		return exitUsage // the CLI's own lookups: a name that does not exist
	}
	return exitError
}

// badInput lists the answers that say the request was wrong: bad input,
// a name or id that does not exist, a route that is not there (a wrong
// --server path), a missing or wrong token.
func badInput(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden,
		http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge,
		http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

// errorText is what is wrong, for a user: the server's problem without
// the HTTP method, path and status, the field named once, an unreachable
// server with the time given up after.
func errorText(err error) string {
	var ue usageError
	var re *client.RetryError
	var ae *client.APIError
	switch {
	case errors.As(err, &ue):
		return ue.msg
	case client.Unreachable(err) && errors.As(err, &re):
		return fmt.Sprintf("cannot reach %s (%s); gave up after %s (--timeout, env DPE_TIMEOUT)",
			strings.Join(re.URLs, ", "), client.Reason(re.Err), re.Elapsed.Round(100*time.Millisecond))
	case errors.As(err, &ae):
		text := problemText(ae)
		if errors.As(err, &re) {
			text += fmt.Sprintf("; gave up after %s", re.Elapsed.Round(100*time.Millisecond))
		}
		return text
	}
	return stripPlumbing(err.Error())
}

// problemText renders a server's problem: its detail (else its title),
// then the field in parentheses; a page that is no dpe answer gets a hint
// about --server.
func problemText(ae *client.APIError) string {
	p := ae.Problem
	if ae.Foreign {
		text := fmt.Sprintf("%s answered %d %s", ae.URL, ae.Status, http.StatusText(ae.Status))
		if ae.Status == http.StatusNotFound || ae.Status == http.StatusMethodNotAllowed {
			text += ": no dpe API there; " + baseURLHint(ae.URL)
		} else if p.Detail != "" {
			text += ": " + p.Detail
		}
		return text
	}
	detail := strings.TrimSpace(p.Detail)
	if p.Field != "" {
		detail = strings.TrimPrefix(detail, p.Field+": ")
	}
	switch {
	case detail == "":
		detail = p.Title
	case ae.Status == http.StatusServiceUnavailable:
		// The detail names the database's own error; the title says it.
		detail = p.Title
	case ae.Status >= 500:
		detail = p.Title + ": " + detail
	}
	if len(p.Errors) > 0 {
		// A template's faults, one a line, each naming its own line,
		// step and field.
		return strings.ReplaceAll(detail, "\n", "\n  ")
	}
	if p.Field != "" {
		detail += " (" + p.Field + ")"
	}
	return detail
}

// baseURLHint tells how to give --server: the server's base URL, without
// a path such as /v1.
func baseURLHint(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Path == "" || u.Path == "/" {
		return "is --server the base URL of a dpe server, e.g. http://127.0.0.1:8460?"
	}
	base := *u
	base.Path, base.RawPath = "", ""
	return fmt.Sprintf("give --server the server's base URL without the path %s: %s", u.Path, base.String())
}

// plumbing matches the "METHOD /v1/...: " prefixes the client puts on its
// errors.
var plumbing = regexp.MustCompile(`\b(GET|POST|PUT|DELETE|PATCH) /v1/\S*: `)

func stripPlumbing(s string) string { return plumbing.ReplaceAllString(s, "") }
