package alert

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/coredb"
	"github.com/dpe-engine/dpe/internal/metrics"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/wire"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// engine is a real core database the evaluator reads and writes.
type engine interface {
	store.Store
	Store
}

// openStore opens a fresh SQLite core database.
func openStore(t *testing.T) engine {
	t.Helper()
	st, err := coredb.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "dpe.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e, ok := st.(engine)
	if !ok {
		t.Fatalf("%T does not serve alerts", st)
	}
	return e
}

// receiver is a real webhook endpoint that records what it gets and
// answers the statuses queued in fail first, then 200.
type receiver struct {
	srv    *httptest.Server
	secret string
	mu     sync.Mutex
	got    []wire.AlertNotification
	fail   []int
	bad    []string // signature errors
}

func newReceiver(t *testing.T, secret string) *receiver {
	t.Helper()
	r := &receiver{secret: secret}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.secret != "" && req.Header.Get(SignatureHeader) != Sign([]byte(r.secret), body) {
			r.bad = append(r.bad, req.Header.Get(SignatureHeader))
		}
		if len(r.fail) > 0 {
			code := r.fail[0]
			r.fail = r.fail[1:]
			http.Error(w, "receiver down", code)
			return
		}
		var n wire.AlertNotification
		if err := json.Unmarshal(body, &n); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.got = append(r.got, n)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) calls() []wire.AlertNotification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// setup returns an evaluator on st with cfg (validated) at t0 on a fake
// clock.
func setup(t *testing.T, st engine, cfg Config, clk *clock.Fake, holder string) *Evaluator {
	t.Helper()
	e, _ := setupReg(t, st, cfg, clk, holder)
	return e
}

// setupReg is setup that also returns the registry of its metrics.
func setupReg(t *testing.T, st engine, cfg Config, clk *clock.Fake, holder string) (*Evaluator, *prometheus.Registry) {
	t.Helper()
	if err := cfg.Validate(func(k string) string { return map[string]string{"HOOK_SECRET": "s3cret"}[k] }); err != nil {
		t.Fatalf("config: %v", err)
	}
	reg := prometheus.NewRegistry()
	return New(Options{Store: st, Config: cfg, Holder: holder, Clock: clk, Log: slog.New(slog.DiscardHandler), Metrics: metrics.NewAlerts(reg)}), reg
}

// gauge reads one series of the registry (-1 when absent).
func gauge(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue next
				}
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

func evaluate(t *testing.T, e *Evaluator) {
	t.Helper()
	if err := e.Evaluate(t.Context()); err != nil {
		t.Fatalf("Evaluate: %v", err)
	}
}

func wantCalls(t *testing.T, r *receiver, n int, what string) []wire.AlertNotification {
	t.Helper()
	got := r.calls()
	if len(got) != n {
		t.Fatalf("%s: %d calls, want %d: %+v", what, len(got), n, got)
	}
	return got
}

func TestGroupInactive(t *testing.T) {
	st := openStore(t)
	clk := clock.NewFake(t0)
	hook := newReceiver(t, "s3cret")
	cfg := Config{
		Receivers: []Receiver{{Name: "ops", Webhook: hook.srv.URL, SecretEnv: "HOOK_SECRET"}},
		Rules:     []Rule{{Name: "nocopy", Kind: model.AlertGroupInactive, For: time.Minute, Match: []string{"trigger/*"}}},
	}
	e, reg := setupReg(t, st, cfg, clk, "server-a")
	firing := map[string]string{"rule": "nocopy", "kind": "group_inactive"}
	if v := gauge(t, reg, metrics.NameAlertsFiring, firing); v != 0 {
		t.Fatalf("firing before any evaluation = %v, want 0 (the rule's series exists)", v)
	}
	ctx := t.Context()
	if _, err := st.LeaseAcquire(ctx, "trigger/sched", "sched@a", 10*time.Second, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LeaseAcquire(ctx, "worker/default", "w@a", 10*time.Second, t0); err != nil {
		t.Fatal(err) // not matched by the rule: never alerts
	}
	evaluate(t, e)
	wantCalls(t, hook, 0, "while the copy holds the lease")

	// The copy stops (releases) at t0+5s: pending for `for`, then one call.
	clk.Advance(5 * time.Second)
	if err := st.LeaseRelease(ctx, "trigger/sched", "sched@a"); err != nil {
		t.Fatal(err)
	}
	evaluate(t, e)
	clk.Advance(59 * time.Second)
	evaluate(t, e)
	wantCalls(t, hook, 0, "before for has passed")
	list, _ := e.List(ctx)
	if list.Pending != 1 || list.Firing != 0 || list.Items[0].State != model.AlertPending {
		t.Fatalf("list while pending = %+v", list)
	}
	clk.Advance(time.Second)
	evaluate(t, e)
	got := wantCalls(t, hook, 1, "once for has passed")
	n := got[0]
	if n.Status != "firing" || n.Rule != "nocopy" || len(n.Alerts) != 1 || n.Alerts[0].Subject != "trigger/sched" ||
		n.Alerts[0].Kind != model.AlertGroupInactive || !strings.Contains(n.Summary, "no active copy") {
		t.Fatalf("notification = %+v", n)
	}
	for range 5 {
		clk.Advance(10 * time.Second)
		evaluate(t, e)
	}
	wantCalls(t, hook, 1, "while it stays inactive")
	if v := gauge(t, reg, metrics.NameAlertsFiring, firing); v != 1 {
		t.Fatalf("firing = %v, want 1", v)
	}
	if v := gauge(t, reg, metrics.NameAlertNotifications, map[string]string{"receiver": "ops", "result": "sent"}); v != 1 {
		t.Fatalf("notifications sent = %v, want 1", v)
	}

	// A second server taking over (a new evaluator on the same database)
	// does not notify again.
	e2 := setup(t, st, cfg, clk, "server-b")
	evaluate(t, e2)
	wantCalls(t, hook, 1, "after a takeover")

	// A copy comes back: one resolved call.
	if _, err := st.LeaseAcquire(ctx, "trigger/sched", "sched@b", 10*time.Second, clk.Now()); err != nil {
		t.Fatal(err)
	}
	evaluate(t, e2)
	got = wantCalls(t, hook, 2, "once a copy is back")
	if got[1].Status != "resolved" || got[1].Alerts[0].ID == got[0].Alerts[0].ID || got[1].Alerts[0].State != model.AlertResolved {
		t.Fatalf("resolved notification = %+v", got[1])
	}
	evaluate(t, e2)
	wantCalls(t, hook, 2, "after resolving")
	if len(hook.bad) > 0 {
		t.Fatalf("bad signatures: %q", hook.bad)
	}
	list, _ = e2.List(ctx)
	if list.Firing != 0 || len(list.Items) != 1 || list.Items[0].Deliveries[0].SentAt == nil || len(list.Rules) != 1 {
		t.Fatalf("list after resolving = %+v", list)
	}
}

func TestNoProcessor(t *testing.T) {
	st := openStore(t)
	clk := clock.NewFake(t0)
	hook := newReceiver(t, "")
	e := setup(t, st, Config{
		Receivers: []Receiver{{Name: "ops", Webhook: hook.srv.URL}},
		Rules:     []Rule{{Name: "noproc", Kind: model.AlertNoProcessor, For: 30 * time.Second}},
	}, clk, "server-a")
	ctx := t.Context()
	if _, err := st.JobInsert(ctx, []model.JobSpec{{Type: "media.transcode"}, {Type: "media.transcode"}}, t0); err != nil {
		t.Fatal(err)
	}
	// A processor that has the type but cannot run it does not serve it.
	p := model.Processor{ID: "p1", Quota: map[string]int{"media.transcode": 1}, ProcessorPresence: model.ProcessorPresence{Unavailable: map[string]string{"media.transcode": "no ffmpeg"}}}
	if err := st.ProcessorUpsert(ctx, p, t0); err != nil {
		t.Fatal(err)
	}
	evaluate(t, e)
	clk.Advance(30 * time.Second)
	evaluate(t, e)
	got := wantCalls(t, hook, 1, "queued jobs and no processor")
	if got[0].Alerts[0].Subject != "media.transcode" || !strings.Contains(got[0].Summary, "2 jobs") {
		t.Fatalf("notification = %+v", got[0])
	}
	p.Unavailable = nil
	if err := st.ProcessorUpsert(ctx, p, clk.Now()); err != nil {
		t.Fatal(err)
	}
	evaluate(t, e)
	if got := wantCalls(t, hook, 2, "a processor serves it"); got[1].Status != "resolved" {
		t.Fatalf("second call = %+v", got[1])
	}
	// The processor goes silent: its presence ages past a minute.
	clk.Advance(2 * time.Minute)
	evaluate(t, e)
	clk.Advance(30 * time.Second)
	evaluate(t, e)
	wantCalls(t, hook, 3, "the processor is gone")
}

// failInstance makes a real failed top-level instance of template at now.
func failInstance(t *testing.T, st engine, name, template string, now time.Time) model.Instance {
	t.Helper()
	ctx := t.Context()
	in, _, err := st.InstanceCreate(ctx, model.InstanceSpec{Template: template, Version: 1, Name: name}, now)
	if err != nil {
		t.Fatal(err)
	}
	held, err := st.InstanceClaim(ctx, store.InstanceClaimParams{Worker: "w1", Default: 100, LeaseTTL: time.Minute, Now: now})
	if err != nil || len(held) != 1 || held[0].ID != in.ID {
		t.Fatalf("claim %s: %v, %v", name, held, err)
	}
	h := held[0]
	out, err := st.InstanceAdvance(ctx, model.Advance{InstanceID: h.ID, Worker: h.Worker, Epoch: h.Epoch, WakeSeq: h.WakeSeq,
		State: model.InstanceFailed, Error: "step copy: no space left"}, now)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestWorkflowFailedRateLimit(t *testing.T) {
	st := openStore(t)
	clk := clock.NewFake(t0)
	hook := newReceiver(t, "")
	e := setup(t, st, Config{
		Receivers: []Receiver{{Name: "ops", Webhook: hook.srv.URL}},
		Rules:     []Rule{{Name: "failed", Kind: model.AlertWorkflowFailed, Match: []string{"ingest*"}, MaxPerMinute: 2}},
	}, clk, "server-a")
	failInstance(t, st, "other-1", "purge", t0) // not matched
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		failInstance(t, st, "ingest-"+n, "ingest", t0)
	}
	evaluate(t, e)
	got := wantCalls(t, hook, 2, "five failures at a rate of two a minute")
	if len(got[0].Alerts) != 1 || got[0].Alerts[0].Subject != "ingest-a" || !strings.Contains(got[0].Summary, "no space left") {
		t.Fatalf("first call = %+v", got[0])
	}
	if len(got[1].Alerts) != 4 || !strings.HasPrefix(got[1].Summary, "4 alerts of rule failed") {
		t.Fatalf("summary call = %+v", got[1])
	}
	// A new failure within the minute waits for the window.
	clk.Advance(10 * time.Second)
	failInstance(t, st, "ingest-f", "ingest", clk.Now())
	evaluate(t, e)
	wantCalls(t, hook, 2, "within the minute")
	// A takeover keeps the rate (seeded from the stored deliveries).
	e2 := setup(t, st, e.o.Config, clk, "server-b")
	if err := e2.seed(t.Context()); err != nil {
		t.Fatal(err)
	}
	evaluate(t, e2)
	wantCalls(t, hook, 2, "within the minute, after a takeover")
	clk.Advance(50 * time.Second)
	evaluate(t, e2)
	if got := wantCalls(t, hook, 3, "after the minute"); got[2].Alerts[0].Subject != "ingest-f" {
		t.Fatalf("third call = %+v", got[2])
	}
	// Failure alerts stay firing for the lookback, then settle without a
	// call, and the failures are not seen again.
	for range 3 {
		clk.Advance(Lookback / 2)
		evaluate(t, e2)
	}
	wantCalls(t, hook, 3, "after the lookback")
	list, _ := e2.List(t.Context())
	if list.Firing != 0 {
		t.Fatalf("firing after the lookback: %+v", list)
	}
}

func TestRetryAndGiveUp(t *testing.T) {
	st := openStore(t)
	clk := clock.NewFake(t0)
	hook := newReceiver(t, "")
	hook.fail = []int{503, 500}
	down := newReceiver(t, "")
	down.fail = []int{500, 500, 500}
	e := setup(t, st, Config{
		Retry:     Retry{Attempts: 3, Backoff: 10 * time.Second, MaxBackoff: 20 * time.Second},
		Receivers: []Receiver{{Name: "ops", Webhook: hook.srv.URL}, {Name: "down", Webhook: down.srv.URL}},
		Rules:     []Rule{{Name: "failed", Kind: model.AlertWorkflowFailed}},
	}, clk, "server-a")
	failInstance(t, st, "x", "ingest", t0)
	evaluate(t, e)
	alert := func() model.Alert {
		list, err := e.List(t.Context())
		if err != nil || len(list.Items) != 1 {
			t.Fatalf("list = %+v, %v", list, err)
		}
		return list.Items[0]
	}
	a := alert()
	if a.Notify != "firing" || a.Deliveries[0].Attempts != 1 || !strings.Contains(a.Deliveries[0].LastError, "503") || a.Deliveries[0].NextAt == nil {
		t.Fatalf("after a failed call: %+v", a)
	}
	evaluate(t, e) // the back-off has not passed: no call
	if hook.calls(); len(hook.fail) != 1 {
		t.Fatalf("retried before the back-off")
	}
	for range 4 {
		clk.Advance(20 * time.Second)
		evaluate(t, e)
	}
	wantCalls(t, hook, 1, "third attempt")
	a = alert()
	ops, dn := a.Deliveries[0], a.Deliveries[1]
	if ops.Attempts != 3 || ops.SentAt == nil || ops.LastError != "" || dn.Attempts != 3 || !dn.GaveUp || dn.SentAt != nil || a.Notify != "" {
		t.Fatalf("after retries: %+v", a)
	}
	if len(down.calls()) != 0 {
		t.Fatal("the failing receiver recorded a call")
	}
}

func TestTest(t *testing.T) {
	st := openStore(t)
	hook := newReceiver(t, "")
	down := newReceiver(t, "")
	down.fail = []int{502}
	e := setup(t, st, Config{Receivers: []Receiver{{Name: "ops", Webhook: hook.srv.URL}, {Name: "down", Webhook: down.srv.URL}}}, clock.NewFake(t0), "s")
	res, err := e.Test(t.Context())
	if err != nil || len(res.Results) != 2 || !res.Results[0].OK || res.Results[1].OK || !strings.Contains(res.Results[1].Error, "502") {
		t.Fatalf("Test = %+v, %v", res, err)
	}
	if got := wantCalls(t, hook, 1, "test"); got[0].Status != "test" {
		t.Fatalf("test call = %+v", got[0])
	}
	none := setup(t, st, Config{}, clock.NewFake(t0), "s")
	if _, err := none.Test(t.Context()); err == nil || !strings.Contains(err.Error(), "alerts.receivers") {
		t.Fatalf("Test without receivers = %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	env := func(k string) string { return map[string]string{"SET": "x"}[k] }
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"bad kind", Config{Receivers: []Receiver{{Name: "a", Webhook: "http://h/x"}}, Rules: []Rule{{Name: "r", Kind: "nope"}}}, "alerts.rules[0].kind"},
		{"for on failures", Config{Receivers: []Receiver{{Name: "a", Webhook: "http://h/x"}}, Rules: []Rule{{Name: "r", Kind: model.AlertWorkflowFailed, For: time.Second}}}, "alerts.rules[0].for"},
		{"unknown receiver", Config{Receivers: []Receiver{{Name: "a", Webhook: "http://h/x"}}, Rules: []Rule{{Name: "r", Kind: model.AlertGroupInactive, Receivers: []string{"b"}}}}, "alerts.rules[0].receivers[0]"},
		{"no receivers", Config{Rules: []Rule{{Name: "r", Kind: model.AlertGroupInactive}}}, "alerts.receivers"},
		{"bad url", Config{Receivers: []Receiver{{Name: "a", Webhook: "ftp://h"}}}, "alerts.receivers[0].webhook"},
		{"no target", Config{Receivers: []Receiver{{Name: "a"}}}, "alerts.receivers[0].webhook"},
		{"missing secret", Config{Receivers: []Receiver{{Name: "a", Webhook: "http://h", SecretEnv: "UNSET"}}}, "alerts.receivers[0].secret_env"},
		{"secret file", Config{Receivers: []Receiver{{Name: "a", Webhook: "http://h", SecretFile: "/nonexistent/s"}}}, "alerts.receivers[0].secret_file"},
		{"bad mail", Config{Receivers: []Receiver{{Name: "a", SMTP: &SMTP{Addr: "mail:25", From: "x", To: []string{"ops@example.com"}}}}}, "alerts.receivers[0].smtp.from"},
		{"smtp addr", Config{Receivers: []Receiver{{Name: "a", SMTP: &SMTP{Addr: "mail", From: "a@b.c", To: []string{"ops@example.com"}}}}}, "alerts.receivers[0].smtp.addr"},
		{"dup rule", Config{Receivers: []Receiver{{Name: "a", Webhook: "http://h"}}, Rules: []Rule{{Name: "r", Kind: model.AlertNoProcessor}, {Name: "r", Kind: model.AlertNoProcessor}}}, "alerts.rules[1].name"},
		{"bad match", Config{Receivers: []Receiver{{Name: "a", Webhook: "http://h"}}, Rules: []Rule{{Name: "r", Kind: model.AlertNoProcessor, Match: []string{"["}}}}, "alerts.rules[0].match[0]"},
		{"rate", Config{Receivers: []Receiver{{Name: "a", Webhook: "http://h"}}, Rules: []Rule{{Name: "r", Kind: model.AlertNoProcessor, MaxPerMinute: -1}}}, "alerts.rules[0].max_per_minute"},
		{"every", Config{Every: time.Millisecond}, "alerts.every"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate(env)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want an error naming %s", err, c.want)
			}
		})
	}
	ok := Config{Receivers: []Receiver{{Name: "a", Webhook: "https://h/x", SecretEnv: "SET"}, {Name: "m", SMTP: &SMTP{Addr: "mail:25", From: "dpe@example.com", To: []string{"ops@example.com"}}}},
		Rules: []Rule{{Name: "r", Kind: model.AlertGroupInactive}}}
	if err := ok.Validate(env); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	if ok.Every != DefaultEvery || ok.Rules[0].For != DefaultFor || !slices.Equal(ok.Rules[0].Receivers, []string{"a", "m"}) || ok.Receivers[0].Timeout != DefaultTimeout {
		t.Fatalf("defaults not filled: %+v", ok)
	}
}
