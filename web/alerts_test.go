package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dpe-engine/dpe/internal/alert"
	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server"
	"github.com/dpe-engine/dpe/internal/wire"
)

// receiver is a real webhook receiver: it keeps the status of each call.
type receiver struct {
	mu    sync.Mutex
	calls []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var n wire.AlertNotification
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &n); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	rc.calls = append(rc.calls, n.Status)
	rc.mu.Unlock()
}

// count counts the calls of a status ("firing", "test").
func (rc *receiver) count(status string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := 0
	for _, s := range rc.calls {
		if s == status {
			n++
		}
	}
	return n
}

// login signs the tab in with token on the login page and waits for the
// page to show the role.
func (b *tab) login(token, role string) {
	b.t.Helper()
	b.waitFor(`document.querySelector('#login-form')`, "the login page")
	b.do(chromedp.SetValue(chromedp.CSS("#token"), token))
	b.click("#login")
	b.waitFor(`!document.querySelector('#login-form') && document.querySelector('#who')?.textContent === 'role: `+role+`'`, "signed in as "+role)
}

func (b *tab) logout() {
	b.t.Helper()
	b.click("#logout")
	b.waitFor(`document.querySelector('#login-form')`, "the login page after logout")
}

// TestBrowserAlertsAudit: a server with a failure rule and a real webhook
// receiver. A failed workflow fires; the overview shows it as active, the
// Alerts page lists its delivery; an operator sends a test notification
// and sees each receiver's result, a viewer is offered no such button;
// the Audit page is offered to the admin only and lists what the operator
// just did, and the monitor's logins (a refused one too) are in the trail.
func TestBrowserAlertsAudit(t *testing.T) {
	const admin = "s3cret-admin"
	rc := &receiver{}
	hook := httptest.NewServer(rc)
	t.Cleanup(hook.Close)
	base, c := stack(t, admin, func(cfg *server.Config) {
		cfg.Alerts = alert.Config{
			Every:     200 * time.Millisecond,
			Receivers: []alert.Receiver{{Name: "ops", Webhook: hook.URL}},
			Rules:     []alert.Rule{{Name: "failed", Kind: model.AlertWorkflowFailed, Match: []string{"broken"}}},
		}
	})
	ctx := context.Background()
	tokens := map[model.Role]string{}
	for _, tc := range []struct {
		name string
		role model.Role
	}{{"olga", model.RoleOperator}, {"vic", model.RoleViewer}} {
		made, err := c.CreateToken(ctx, wire.TokenRequest{Name: tc.name, Role: tc.role})
		if err != nil {
			t.Fatal(err)
		}
		tokens[tc.role] = made.Secret
	}
	bad := startWorkflow(t, c, "broken")
	waitState(t, c, bad.ID, model.InstanceFailed)
	fired := eventually.Value(t, 30*time.Second, func() (*wire.AlertList, error) {
		l, err := c.ListAlerts(ctx)
		return &l, err
	}, func(l *wire.AlertList) bool {
		return l.Firing == 1 && len(l.Items[0].Deliveries) == 1 && l.Items[0].Deliveries[0].SentAt != nil
	}, "a firing alert, notified").Items[0]
	if rc.count("firing") != 1 {
		t.Fatalf("receiver got %d firing calls, want 1", rc.count("firing"))
	}
	b := browser(t, base)
	b.open("#/")

	t.Run("a refused login, then an operator's", func(t *testing.T) {
		b.t = t
		b.waitFor(`document.querySelector('#login-form')`, "the login page")
		b.do(chromedp.SetValue(chromedp.CSS("#token"), "not-a-token"))
		b.click("#login")
		b.waitFor(`document.querySelector('#login-form .err')?.textContent.includes('not valid')`, "the refusal")
		b.login(tokens[model.RoleOperator], "operator")
	})

	t.Run("overview shows the firing alert", func(t *testing.T) {
		b.t = t
		b.open("#/")
		b.waitFor(`(li => li && li.querySelector('.subject')?.textContent === `+js(fired.Subject)+` && li.querySelector('.summary')?.textContent === `+js(fired.Summary)+` && li.innerText.includes('FIRING') && li.innerText.includes('since'))(document.querySelector('#active-alerts li[data-key=`+js(fired.Key)+`]'))`, "the firing alert with its subject, summary and since")
		b.waitFor(`document.querySelector('#nav a[data-page=audit]')?.hidden === true`, "no Audit link for an operator")
		b.shot("overview-alert")
	})

	t.Run("alerts page: the delivery, the rules, a test notification", func(t *testing.T) {
		b.t = t
		b.open("#/alerts")
		b.waitFor(`(r => r && r.innerText.includes('FIRING') && r.querySelector('li[data-receiver=ops]')?.innerText.includes('SENT') && r.querySelector('li[data-receiver=ops]').innerText.includes('1 attempt'))([...document.querySelectorAll('#alert-list tbody tr')].find(r => r.innerText.includes(`+js(fired.Subject)+`)))`, "the alert's delivery to ops, sent")
		b.waitFor(`document.querySelector('#alert-config')?.innerText.includes('workflow_failed') && document.querySelector('#alert-receivers')?.innerText.includes('ops')`, "the rule and the receiver")
		b.waitFor(`document.querySelector('#alert-counts')?.innerText.includes('1 firing')`, "the count of firing alerts")
		b.click("#alert-test")
		b.waitFor(`document.querySelector('#dialog')?.open`, "the confirmation")
		b.click("#dialog-yes")
		b.waitFor(`[...document.querySelectorAll('#alert-test-results tbody tr')].some(r => r.innerText.includes('ops') && r.innerText.includes('SENT'))`, "the receiver's result")
		if n := rc.count("test"); n != 1 {
			t.Errorf("receiver got %d test calls, want 1", n)
		}
		b.shot("alerts")
		b.open("#/audit")
		b.waitFor(`document.querySelector('#audit-denied')`, "the audit page refused to an operator")
		b.logout()
	})

	t.Run("viewer: no test button, no audit", func(t *testing.T) {
		b.t = t
		b.login(tokens[model.RoleViewer], "viewer")
		b.open("#/alerts")
		b.waitFor(`[...document.querySelectorAll('#alert-list tbody tr')].some(r => r.innerText.includes(`+js(fired.Subject)+`))`, "the alert listed to a viewer")
		b.waitFor(`!document.querySelector('#alert-test') && document.querySelector('#nav a[data-page=audit]')?.hidden === true`, "no test button and no Audit link")
		b.logout()
	})

	t.Run("admin: the audit trail lists the operator's test", func(t *testing.T) {
		b.t = t
		b.login(admin, "admin")
		b.waitFor(`document.querySelector('#nav a[data-page=audit]')?.hidden === false`, "the Audit link for an admin")
		b.click(`#nav a[data-page=audit]`)
		row := `[...document.querySelectorAll('#audit-list tbody tr')].find(r => r.innerText.includes('POST /v1/alerts/test'))`
		b.waitFor(`(r => r && r.innerText.includes('olga') && r.innerText.includes('operator') && r.innerText.includes('200') && r.innerText.includes('ok'))(`+row+`)`, "the operator's test notification in the trail")
		b.waitFor(`[...document.querySelectorAll('#audit-list tbody tr')].some(r => r.innerText.includes('POST /v1/session') && r.innerText.includes('anonymous') && r.innerText.includes('401'))`, "the refused login in the trail")
		b.shot("audit")
		// Filter by principal: only olga's calls.
		b.do(chromedp.SetValue(chromedp.CSS("#f-principal"), "olga"))
		b.click(`#audit-filters button[type=submit]`)
		b.waitFor(`location.hash.includes('principal=olga') && document.querySelectorAll('#audit-list tbody tr').length === 2 && [...document.querySelectorAll('#audit-list tbody tr')].every(r => r.innerText.includes('olga'))`, "olga's login and test only")
		// Page by the cursor, one entry a page: newest first.
		b.open("#/audit?principal=olga&limit=1")
		b.waitFor(`document.querySelectorAll('#audit-list tbody tr').length === 1 && document.querySelector('#audit-list tbody').innerText.includes('/v1/alerts/test')`, "the newest of olga's entries")
		b.click("#audit-older")
		b.waitFor(`location.hash.includes('cursor=') && document.querySelectorAll('#audit-list tbody tr').length === 1 && document.querySelector('#audit-list tbody').innerText.includes('POST /v1/session')`, "the older one: her login")
	})

	t.Run("each login is one audit record", func(t *testing.T) {
		b.t = t
		logins := func(principal string, status int) int {
			p, err := c.ListAudit(ctx, client.AuditQuery{Route: "POST /v1/session", Principal: principal})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, e := range p.Items {
				if e.Status == status {
					n++
				}
			}
			return n
		}
		eventually.True(t, 10*time.Second, func() bool { return logins("shared-token", 200) == 1 }, "the admin's login recorded")
		for _, tc := range []struct {
			principal string
			status    int
		}{{"anonymous", 401}, {"olga", 200}, {"vic", 200}, {"shared-token", 200}} {
			if n := logins(tc.principal, tc.status); n != 1 {
				t.Errorf("%s logins with status %d: %d records, want 1", tc.principal, tc.status, n)
			}
		}
	})
}
