package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// runAlert lists the alerts or sends a test notification to every
// configured receiver.
func runAlert(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || (args[0] != "list" && args[0] != "test") {
		return usagef("want: dpe alert list [--state S,...], or dpe alert test")
	}
	verb := args[0]
	fs, g := newCommand("alert "+verb, e)
	var states listFlag
	fs.Var(&states, "state", "list: only alerts in these states (pending, firing, resolved; repeatable or comma-separated)")
	if err := g.parseNone(args[1:]); err != nil {
		return err
	}
	want := map[model.AlertState]bool{}
	for _, s := range states {
		for _, st := range strings.Split(s, ",") {
			switch st := model.AlertState(strings.TrimSpace(st)); st {
			case model.AlertPending, model.AlertFiring, model.AlertResolved:
				want[st] = true
			default:
				return usagef("--state: %q is not a state: want pending, firing or resolved", st)
			}
		}
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	if verb == "test" {
		res, err := c.TestAlerts(ctx)
		if err != nil {
			return err
		}
		if g.json() {
			if err := printJSON(e.stdout, res); err != nil {
				return err
			}
		} else {
			t := newTable(e.stdout, "RECEIVER", "RESULT", "TIME", "ERROR")
			for _, r := range res.Results {
				t.row(r.Receiver, map[bool]string{true: "sent", false: "failed"}[r.OK], formatDuration(r.Duration.D()), dash(r.Error))
			}
			t.flush()
		}
		failed := 0
		for _, r := range res.Results {
			if !r.OK {
				failed++
			}
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d alert receivers failed the test", failed, len(res.Results))
		}
		return nil
	}
	list, err := c.ListAlerts(ctx)
	if err != nil {
		return err
	}
	if len(want) > 0 {
		list.Items = slices.DeleteFunc(list.Items, func(a model.Alert) bool { return !want[a.State] })
		list.Total, list.Firing, list.Pending = len(list.Items), 0, 0
		for _, a := range list.Items {
			switch a.State {
			case model.AlertFiring:
				list.Firing++
			case model.AlertPending:
				list.Pending++
			}
		}
	}
	if g.json() {
		return printJSON(e.stdout, list)
	}
	printAlerts(e, list)
	return nil
}

func printAlerts(e *env, list wire.AlertList) {
	if len(list.Rules) == 0 {
		fmt.Fprintln(e.stderr, "no alert rules configured (the alerts section of the server's --config file)")
	}
	t := newTable(e.stdout, "STATE", "RULE", "SUBJECT", "SINCE", "DELIVERY", "SUMMARY")
	for _, a := range list.Items {
		t.row(a.State, a.Rule, a.Subject, a.Since.Local().Format(time.DateTime), deliveryText(a), clipText(a.Summary, 80))
	}
	t.flush()
	fmt.Fprintf(e.stdout, "%d firing, %d pending\n", list.Firing, list.Pending)
}

// deliveryText says where the latest notification of a stands, per
// receiver: sent, retrying (attempts, last error) or given up.
func deliveryText(a model.Alert) string {
	var parts []string
	for _, d := range a.Deliveries {
		switch {
		case d.SentAt != nil:
			parts = append(parts, fmt.Sprintf("%s: %s sent %s", d.Receiver, d.Notification, d.SentAt.Local().Format(time.TimeOnly)))
		case d.GaveUp:
			parts = append(parts, fmt.Sprintf("%s: gave up after %d (%s)", d.Receiver, d.Attempts, clipText(d.LastError, 40)))
		case d.Attempts > 0:
			parts = append(parts, fmt.Sprintf("%s: retrying, %d failed (%s)", d.Receiver, d.Attempts, clipText(d.LastError, 40)))
		default:
			parts = append(parts, d.Receiver+": due")
		}
	}
	return dash(strings.Join(parts, "; "))
}

func clipText(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
