package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/dpe-engine/dpe/internal/backoff"
	"github.com/dpe-engine/dpe/internal/clock"
)

// Approval hook tuning.
const (
	approvalAttempts = 3                      // questions per fire at most
	approvalBackoff  = 250 * time.Millisecond // doubled after each failed one
	approvalMaxBody  = 4 << 10                // bytes of the answer read
)

// approver asks approval hooks.
type approver struct {
	hc    *http.Client
	clock clock.Clock
}

// approve asks a.URL whether the fire of schedule name at at may start:
// GET URL?schedule=NAME&fire_time=RFC3339 (added to any query the URL
// has). The answer:
//
//   - 2xx with an empty body, or a body whose first word is yes, true or
//     ok (any case): fire.
//   - 2xx whose first word is no or false, or 403 or 409: skip with
//     reason "approval said no".
//   - A network error, a timeout, 5xx or 429: asked again, at most 3 times
//     in all, after 250ms then 500ms, within a.Timeout for the whole
//     question; then skip with reason "approval failed: <last error>
//     (N attempts)". Failing closed: a gate that cannot be asked is a no,
//     and the record says why.
//   - Any other answer (another 4xx, a 2xx saying something else): skip
//     at once with reason "approval failed: ..." — asking again would not
//     change it.
//
// The error is non-nil only when ctx ended: shutting down records nothing.
func (ap *approver) approve(ctx context.Context, a *Approval, name string, at time.Time) (ok bool, reason string, err error) {
	u, err := url.Parse(a.URL)
	if err != nil { // Validate refused this already
		return false, "approval failed: bad url", nil
	}
	q := u.Query()
	q.Set("schedule", name)
	q.Set("fire_time", fireKey(at))
	u.RawQuery = q.Encode()

	end := ap.clock.Now().Add(a.Timeout)
	var last error
	attempt := 0
	for attempt < approvalAttempts {
		remaining := end.Sub(ap.clock.Now())
		if remaining <= 0 {
			break
		}
		attempt++
		ok, reason, retry, err := ap.ask(ctx, u.String(), remaining)
		if ctx.Err() != nil {
			return false, "", ctx.Err()
		}
		if !retry {
			return ok, reason, nil
		}
		last = err
		wait := backoff.Policy{Initial: approvalBackoff}.Ceiling(attempt - 1)
		if attempt == approvalAttempts || ap.clock.Now().Add(wait).After(end) {
			break
		}
		if err := clock.Sleep(ctx, ap.clock, wait); err != nil {
			return false, "", err
		}
	}
	if last == nil {
		last = errors.New("no time left to ask")
	}
	return false, fmt.Sprintf("approval failed: %v (%d attempts)", last, attempt), nil
}

// ask makes one attempt. retry says the failure (err) may pass.
func (ap *approver) ask(ctx context.Context, u string, timeout time.Duration) (ok bool, reason string, retry bool, err error) {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Sprintf("approval failed: %v", err), false, nil
	}
	req.Header.Set("Accept", "text/plain")
	req.Header.Set("User-Agent", "dpe-scheduler")
	res, err := ap.hc.Do(req)
	if err != nil {
		// The url.Error would repeat the URL, whose query may hold a
		// token: keep only what went wrong.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = errors.New("timed out")
		}
		return false, "", true, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, approvalMaxBody))
	if err != nil {
		return false, "", true, fmt.Errorf("read answer: %w", err)
	}
	status := fmt.Sprintf("%d %s", res.StatusCode, http.StatusText(res.StatusCode))
	switch {
	case res.StatusCode == http.StatusForbidden || res.StatusCode == http.StatusConflict:
		return false, ReasonApprovalNo, false, nil
	case res.StatusCode >= 500 || res.StatusCode == http.StatusTooManyRequests:
		return false, "", true, errors.New(status)
	case res.StatusCode < 200 || res.StatusCode > 299:
		return false, "approval failed: " + status, false, nil
	}
	if strings.TrimSpace(string(body)) == "" {
		return true, "", false, nil
	}
	switch firstWord(string(body)) {
	case "yes", "true", "ok":
		return true, "", false, nil
	case "no", "false":
		return false, ReasonApprovalNo, false, nil
	default:
		s := strings.TrimSpace(string(body))
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return false, fmt.Sprintf("approval failed: unrecognised answer %q", s), false, nil
	}
}

// firstWord returns the first run of letters of s, lower-cased: "Yes."
// and "\"no\"" read as yes and no.
func firstWord(s string) string {
	notLetter := func(r rune) bool { return !unicode.IsLetter(r) }
	s = strings.TrimLeftFunc(s, notLetter)
	end := strings.IndexFunc(s, notLetter)
	if end >= 0 {
		s = s[:end]
	}
	return strings.ToLower(s)
}
