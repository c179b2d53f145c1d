package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
)

// runAudit lists the audit trail of mutating API calls (admin token).
func runAudit(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return usagef("want a subcommand: list")
	}
	switch args[0] {
	case "list":
		return auditList(ctx, e, args[1:])
	default:
		return usagef("unknown subcommand %q: want list", args[0])
	}
}

func auditList(ctx context.Context, e *env, args []string) error {
	fs, g := newCommand("audit list", e)
	now := time.Now()
	var q client.AuditQuery
	fs.Var(sinceFlag{t: &q.Since, now: now}, "since", "only calls at or after: a duration back from now (90m, 24h) or an RFC 3339 time")
	fs.Var(sinceFlag{t: &q.Until, now: now}, "until", "only calls before: a duration back from now or an RFC 3339 time")
	fs.StringVar(&q.Principal, "principal", "", `only calls by this token name ("anonymous": without a valid token; "-": while the server required none)`)
	fs.StringVar(&q.Route, "route", "", `only calls of this route, as listed: "POST /v1/jobs", "DELETE /v1/templates/{name}"`)
	fs.IntVar(&q.Limit, "n", 50, "page size (at most 1000)")
	fs.IntVar(&q.Limit, "limit", 50, "page size (same as -n)")
	fs.StringVar(&q.Cursor, "after", "", "cursor: the 'next' of the previous page")
	if err := g.parseNone(args); err != nil {
		return err
	}
	if q.Limit < 1 || q.Limit > 1000 {
		return usagef("-n: want a number from 1 to 1000, got %d", q.Limit)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return usagef("--until must be after --since")
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	page, err := c.ListAudit(ctx, q)
	if err != nil {
		return err
	}
	if g.json() {
		return printJSON(e.stdout, page)
	}
	t := newTable(e.stdout, "ID", "TIME", "PRINCIPAL", "ROLE", "ROUTE", "TARGET", "STATUS", "OUTCOME", "REMOTE")
	for _, a := range page.Items {
		t.row(a.ID, a.At.Local().Format(time.DateTime), a.Principal, dash(string(a.Role)), a.Route, dash(a.Target),
			a.Status, a.Outcome, dash(a.Remote))
	}
	t.flush()
	fmt.Fprintf(e.stdout, "%d of %d", len(page.Items), page.Total)
	if page.Next != "" {
		fmt.Fprintf(e.stdout, "; next page: --after %s", page.Next)
	}
	fmt.Fprintln(e.stdout)
	return nil
}

// sinceFlag is a point in time given as a duration back from now (24h)
// or an RFC 3339 time.
type sinceFlag struct {
	t   *time.Time
	now time.Time
}

var _ flag.Value = sinceFlag{}

func (f sinceFlag) String() string {
	if f.t == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f sinceFlag) Set(s string) error {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return fmt.Errorf("want a positive duration back from now, got %q", s)
		}
		*f.t = f.now.Add(-d)
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("want a duration such as 24h or a time such as 2026-11-25T02:00:00Z, got %q", s)
	}
	*f.t = t
	return nil
}
