package scheduler

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/trigger"
)

func TestFirstStartRecordsBaseline(t *testing.T) {
	srv := newFakeServer(t)
	start := t0.Add(30 * time.Second)
	clk := newFakeClock(start)
	cfg := Config{Name: "tick", Cron: "* * * * *", Template: "t", Misfire: MisfireAll}
	startScheduler(t, Options{Client: srv.newClient(t), Schedules: []Config{cfg}, Mode: concurrent(), Clock: clk})
	clk.waitIdle(t, 1)
	if got := srv.last("tick"); !got.Equal(start) {
		t.Errorf("baseline last %s, want %s", got, start)
	}
	if got := srv.instanceNames(); len(got) != 0 {
		t.Errorf("first start fired the past: %v", got)
	}
	clk.runUntil(t, 1, t0.Add(2*time.Minute))
	if got, want := srv.instanceNames(), names("tick", minutes(t0, 1, 2)...); !slices.Equal(got, want) {
		t.Errorf("instances %v, want %v", got, want)
	}
}

func TestStartCarriesArgsAndData(t *testing.T) {
	srv := newFakeServer(t)
	srv.setLast("purge", t0)
	clk := newFakeClock(t0)
	cfg := Config{Name: "purge", Cron: "0 * * * *", Template: "purge", Priority: 9,
		Args: map[string]any{"older_than": "720h", "day": "${{ fire_time }}"}}
	startScheduler(t, Options{Client: srv.newClient(t), Schedules: []Config{cfg}, Mode: concurrent(), Clock: clk})
	clk.runUntil(t, 1, t0.Add(time.Hour))
	in := srv.instance("schedule/purge/2026-11-25T01:00:00Z")
	if in == nil {
		t.Fatalf("no instance: %v", srv.instanceNames())
	}
	s := in.start
	if s.Key != "2026-11-25T01:00:00Z" || s.Instance.Template != "purge" || s.Instance.Priority != 9 ||
		string(s.Instance.Args) != `{"day":"${{ fire_time }}","older_than":"720h"}` ||
		s.Data["fire_time"] != "2026-11-25T01:00:00Z" || s.Data["schedule"] != "purge" {
		t.Errorf("start %+v", s)
	}
}

// Two copies in concurrent mode fire every second for 20 seconds: every
// fire time starts one instance; the second copy finds it existing.
func TestConcurrentCopiesStartEachFireOnce(t *testing.T) {
	srv := newFakeServer(t)
	clk := newFakeClock(t0)
	cfg := Config{Name: "sec", Cron: "* * * * * *", Template: "t"}
	for range 2 {
		startScheduler(t, Options{Client: srv.newClient(t), Schedules: []Config{cfg}, Mode: concurrent(), Clock: clk})
	}
	clk.runUntil(t, 2, t0.Add(20*time.Second))

	got := srv.instanceNames()
	var want []string
	for i := 1; i <= 20; i++ {
		want = append(want, InstanceName("sec", t0.Add(time.Duration(i)*time.Second)))
	}
	if !slices.Equal(got, want) {
		t.Errorf("instances:\n%s\nwant:\n%s", join(got), join(want))
	}
	if n := len(srv.recordsOf(model.RecordStarted)); n != 20 {
		t.Errorf("%d started records, want 20", n)
	}
	if n := len(srv.recordsOf(model.RecordExisting)); n != 20 {
		t.Errorf("%d existing records, want 20 (the other copy's)", n)
	}
	if n := len(srv.recordsOf(model.RecordSkipped)); n != 0 {
		t.Errorf("%d skipped records", n)
	}
}

// A copy stops; an hour later another starts and continues from the
// stored "last": with misfire all, every minute starts exactly once.
func TestRestartContinuesFromLast(t *testing.T) {
	srv := newFakeServer(t)
	srv.setLast("tick", t0)
	cfg := Config{Name: "tick", Cron: "* * * * *", Template: "t", Misfire: MisfireAll}

	clk := newFakeClock(t0)
	stop := startScheduler(t, Options{Client: srv.newClient(t), Schedules: []Config{cfg}, Mode: concurrent(), Clock: clk})
	clk.runUntil(t, 1, t0.Add(5*time.Minute+20*time.Second))
	stop()
	if got := srv.last("tick"); !got.Equal(t0.Add(5 * time.Minute)) {
		t.Fatalf("last %s after the first copy", got)
	}

	clk2 := newFakeClock(t0.Add(65*time.Minute + 10*time.Second))
	startScheduler(t, Options{Client: srv.newClient(t), Schedules: []Config{cfg}, Mode: concurrent(), Clock: clk2})
	clk2.runUntil(t, 1, t0.Add(70*time.Minute))

	if got, want := srv.instanceNames(), names("tick", minutes(t0, 1, 70)...); !slices.Equal(got, want) {
		t.Errorf("instances:\n%s\nwant:\n%s", join(got), join(want))
	}
	if n := len(srv.recordsOf(model.RecordExisting)) + len(srv.recordsOf(model.RecordSkipped)); n != 0 {
		t.Errorf("%d existing or skipped records, want none", n)
	}
}

// A fire decided on time whose Fire call fails is kept and started when
// the server is back, however late by then, even with misfire skip.
func TestFailedFireIsRetriedNotDropped(t *testing.T) {
	srv := newFakeServer(t)
	srv.setLast("tick", t0)
	clk := newFakeClock(t0)
	cfg := Config{Name: "tick", Cron: "* * * * *", Template: "t", Misfire: MisfireSkip}
	startScheduler(t, Options{Client: srv.newClient(t), Schedules: []Config{cfg}, Mode: concurrent(), Clock: clk})
	clk.runUntil(t, 1, t0.Add(59*time.Second))
	srv.setDown(true)
	clk.runUntil(t, 1, t0.Add(time.Minute+20*time.Second))
	if calls := srv.triggerCalls(); calls < 20 {
		t.Errorf("%d calls in 21s, mostly down: the scheduler did not retry every second", calls)
	}
	if got := srv.instanceNames(); len(got) != 0 {
		t.Fatalf("instances while down: %v", got)
	}
	srv.setDown(false)
	clk.runUntil(t, 1, t0.Add(time.Minute+22*time.Second))
	if got, want := srv.instanceNames(), names("tick", t0.Add(time.Minute)); !slices.Equal(got, want) {
		t.Errorf("instances %v, want %v", got, want)
	}
	if n := len(srv.recordsOf(model.RecordSkipped)); n != 0 {
		t.Errorf("%d skipped records: the pending fire was judged late", n)
	}
	if got := srv.last("tick"); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("last %s", got)
	}
}

// A full throttle in wait mode holds a fire back without consuming it;
// what piles up behind it is coalesced by the misfire policy (once).
func TestThrottleWaitDoesNotConsume(t *testing.T) {
	srv := newFakeServer(t)
	srv.setLast("job", t0)
	clk := newFakeClock(t0)
	cfg := Config{Name: "job", Cron: "* * * * *", Template: "t", Throttle: &Throttle{MaxRunning: 1, WhenFull: ThrottleWait}}
	startScheduler(t, Options{Client: srv.newClient(t), Schedules: []Config{cfg}, Mode: concurrent(), Clock: clk})

	clk.runUntil(t, 1, t0.Add(2*time.Minute+10*time.Second))
	if got, want := srv.instanceNames(), names("job", t0.Add(time.Minute)); !slices.Equal(got, want) {
		t.Fatalf("instances %v, want %v", got, want)
	}
	if n := len(srv.recordsOf(model.RecordThrottled)); n < 10 {
		t.Errorf("%d throttled offers in 10s, want one a second", n)
	}
	if got := srv.last("job"); !got.Equal(t0.Add(time.Minute)) {
		t.Fatalf("last %s: the throttled fire was consumed", got)
	}

	clk.runUntil(t, 1, t0.Add(5*time.Minute+30*time.Second))
	srv.finish(InstanceName("job", t0.Add(time.Minute)))
	clk.runUntil(t, 1, t0.Add(5*time.Minute+31*time.Second))
	// 00:02 started at last; 00:03 and 00:04 coalesced; 00:05 now waits.
	if got, want := srv.instanceNames(), names("job", minutes(t0, 1, 2)...); !slices.Equal(got, want) {
		t.Fatalf("instances %v, want %v", got, want)
	}
	if got, want := keysOf(srv.recordsOf(model.RecordSkipped)), []string{fireKey(t0.Add(3 * time.Minute)), fireKey(t0.Add(4 * time.Minute))}; !slices.Equal(got, want) {
		t.Errorf("skipped %v, want %v", got, want)
	}
	if got := srv.last("job"); !got.Equal(t0.Add(time.Minute)) {
		t.Errorf("last %s: stored although a fire was held", got)
	}

	srv.finish(InstanceName("job", t0.Add(2*time.Minute)))
	clk.runUntil(t, 1, t0.Add(5*time.Minute+32*time.Second))
	if got, want := srv.instanceNames(), names("job", t0.Add(time.Minute), t0.Add(2*time.Minute), t0.Add(5*time.Minute)); !slices.Equal(got, want) {
		t.Errorf("instances %v, want %v", got, want)
	}
	if got := srv.last("job"); !got.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("last %s", got)
	}
}

func TestThrottleSkipAndOverlapAreSentAndConsumed(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cfg    Config
		action string
	}{
		{"throttle skip", Config{Throttle: &Throttle{MaxRunning: 1}}, model.RecordThrottled},
		{"overlap skip", Config{Overlap: OverlapSkip}, model.RecordOverlap},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeServer(t)
			srv.setLast("job", t0)
			clk := newFakeClock(t0)
			cfg := tt.cfg
			cfg.Name, cfg.Cron, cfg.Template = "job", "* * * * *", "t"
			startScheduler(t, Options{Client: srv.newClient(t), Schedules: []Config{cfg}, Mode: concurrent(), Clock: clk})
			clk.runUntil(t, 1, t0.Add(3*time.Minute))
			if got := srv.instanceNames(); len(got) != 1 {
				t.Errorf("instances %v", got)
			}
			if got := keysOf(srv.recordsOf(tt.action)); len(got) != 2 {
				t.Errorf("%s records %v, want 00:02 and 00:03", tt.action, got)
			}
			if got := srv.last("job"); !got.Equal(t0.Add(3 * time.Minute)) {
				t.Errorf("last %s", got)
			}
		})
	}
}

// approvalServer answers per fire time; it counts the questions.
type approvalServer struct {
	*httptest.Server
	mu      sync.Mutex
	asked   map[string]int
	answers func(fireTime string, n int) (int, string)
}

func newApprovalServer(t *testing.T, answers func(fireTime string, n int) (int, string)) *approvalServer {
	a := &approvalServer{asked: map[string]int{}, answers: answers}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ft := r.URL.Query().Get("fire_time")
		if r.URL.Query().Get("schedule") == "" || r.URL.Query().Get("token") != "s3cret" {
			http.Error(w, "bad query", 400)
			return
		}
		a.mu.Lock()
		a.asked[ft]++
		n := a.asked[ft]
		a.mu.Unlock()
		status, body := a.answers(ft, n)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(a.Close)
	return a
}

func (a *approvalServer) count(ft string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.asked[ft]
}

func TestApprovalHook(t *testing.T) {
	k := func(m int) string { return fireKey(t0.Add(time.Duration(m) * time.Minute)) }
	gate := newApprovalServer(t, func(ft string, n int) (int, string) {
		switch ft {
		case k(2):
			return 200, "no\n"
		case k(3):
			if n == 1 {
				return 503, "busy"
			}
			return 200, "yes"
		case k(4):
			return 500, "broken"
		case k(5):
			return 403, ""
		}
		return 200, "OK"
	})
	srv := newFakeServer(t)
	srv.setLast("gated", t0)
	clk := newFakeClock(t0)
	cfg := Config{Name: "gated", Cron: "* * * * *", Template: "t", Approval: &Approval{URL: gate.URL + "/approve?token=s3cret"}}
	startScheduler(t, Options{Client: srv.newClient(t), Schedules: []Config{cfg}, Mode: concurrent(), Clock: clk, HTTP: gate.Client()})
	clk.runUntil(t, 1, t0.Add(6*time.Minute))

	if got, want := srv.instanceNames(), names("gated", t0.Add(time.Minute), t0.Add(3*time.Minute), t0.Add(6*time.Minute)); !slices.Equal(got, want) {
		t.Errorf("instances %v, want %v", got, want)
	}
	skips := srv.recordsOf(model.RecordSkipped)
	want := map[string]string{
		k(2): ReasonApprovalNo,
		k(4): "approval failed: 500 Internal Server Error (3 attempts)",
		k(5): ReasonApprovalNo,
	}
	if len(skips) != len(want) {
		t.Errorf("skipped %v", skips)
	}
	for _, r := range skips {
		if want[r.Key] != r.Reason {
			t.Errorf("skipped %s with reason %q, want %q", r.Key, r.Reason, want[r.Key])
		}
	}
	for m, n := range map[int]int{1: 1, 2: 1, 3: 2, 4: 3, 5: 1} {
		if got := gate.count(k(m)); got != n {
			t.Errorf("asked about %s %d times, want %d", k(m), got, n)
		}
	}
}

func TestFireNow(t *testing.T) {
	srv := newFakeServer(t)
	srv.setLast("purge", t0)
	now := t0.Add(90*time.Minute + 123456789*time.Nanosecond)
	cfg := Config{Name: "purge", Cron: "0 2 * * *", Template: "purge", Enabled: new(false), Args: map[string]any{"a": 1}}
	res, err := FireNow(context.Background(), srv.newClient(t), cfg, now)
	if err != nil {
		t.Fatal(err)
	}
	name := "schedule/purge/manual/2026-11-25T01:30:00.123456789Z"
	if len(res.Records) != 1 || res.Records[0].Action != model.RecordStarted || res.Records[0].Instance != name {
		t.Errorf("records %+v", res.Records)
	}
	in := srv.instance(name)
	if in == nil || in.start.Event != "manual" || in.start.Data["manual"] != true || string(in.start.Instance.Args) != `{"a":1}` {
		t.Errorf("instance %+v", in)
	}
	if got := srv.last("purge"); !got.Equal(t0) {
		t.Errorf("FireNow moved last to %s", got)
	}
	if _, err := FireNow(context.Background(), srv.newClient(t), Config{Name: "x"}, now); err == nil {
		t.Error("FireNow accepted a bad config")
	}
}

// Two copies in standby mode: one holds the lease "trigger/<group>" and
// fires; the other waits. Mode.Group puts every schedule under one lease.
func TestStandbyOneActiveCopy(t *testing.T) {
	srv := newFakeServer(t)
	clk := newFakeClock(t0)
	cfgs := []Config{
		{Name: "a", Cron: "* * * * * *", Template: "t"},
		{Name: "b", Cron: "*/2 * * * * *", Template: "t"},
	}
	for _, holder := range []string{"one", "two"} {
		startScheduler(t, Options{Client: srv.newClient(t), Schedules: slices.Clone(cfgs), Clock: clk,
			Mode: trigger.Mode{Mode: trigger.Standby, Group: "grp", Holder: holder}})
	}
	clk.runUntil(t, 2, t0.Add(10*time.Second))
	if n := len(srv.instanceNames()); n != 15 {
		t.Errorf("%d instances, want 10 + 5", n)
	}
	if n := len(srv.recordsOf(model.RecordExisting)); n != 0 {
		t.Errorf("%d existing records: both copies fired", n)
	}
	srv.mu.Lock()
	var leases []string
	for name := range srv.leases {
		leases = append(leases, name)
	}
	srv.mu.Unlock()
	if strings.Join(leases, ",") != "trigger/grp" {
		t.Errorf("leases %v, want trigger/grp", leases)
	}
}

// End to end through the spring-forward night in Berlin: the 02:30 fire
// that does not exist starts at 03:00 CEST.
func TestDSTSpringForwardEndToEnd(t *testing.T) {
	srv := newFakeServer(t)
	start := utc("2026-03-28T12:00:00Z")
	srv.setLast("night", start)
	clk := newFakeClock(start)
	cfg := Config{Name: "night", Cron: "30 2 * * *", Timezone: "Europe/Berlin", Template: "t"}
	startScheduler(t, Options{Client: srv.newClient(t), Schedules: []Config{cfg}, Mode: concurrent(), Clock: clk})
	clk.runUntil(t, 1, utc("2026-03-30T06:00:00Z"))
	want := []string{"schedule/night/2026-03-29T01:00:00Z", "schedule/night/2026-03-30T00:30:00Z"}
	if got := srv.instanceNames(); !slices.Equal(got, want) {
		t.Errorf("instances %v, want %v", got, want)
	}
}

func TestStateRoundTrip(t *testing.T) {
	at := utc("2026-11-25T01:00:00Z").Add(5 * time.Millisecond)
	cfg := Config{Name: "n", Cron: "0 1 * * *", Template: "t", Args: map[string]any{"a": 1}}
	cc, err := cfg.compile()
	if err != nil {
		t.Fatal(err)
	}
	raw := cc.stateJSON(at)
	var m struct {
		Last string              `json:"last"`
		Spec *model.ScheduleSpec `json:"spec"`
	}
	if err := json.Unmarshal(raw, &m); err != nil || m.Last != "2026-11-25T01:00:00.005Z" ||
		m.Spec == nil || m.Spec.Cron != "0 1 * * *" || m.Spec.Timezone != "UTC" || m.Spec.Template != "t" || m.Spec.Args["a"] != 1.0 {
		t.Errorf("state %s", raw)
	}
	got, ok, err := parseState(raw)
	if err != nil || !ok || !got.Equal(at) {
		t.Errorf("parse %v %v %v", got, ok, err)
	}
	if _, ok, err := parseState(nil); ok || err != nil {
		t.Error("empty state")
	}
	if _, _, err := parseState(json.RawMessage(`{"last":"yesterday"}`)); err == nil {
		t.Error("bad state accepted")
	}
}

func TestNewRefuses(t *testing.T) {
	srv := newFakeServer(t)
	c := srv.newClient(t)
	good := Config{Name: "a", Cron: "@daily", Template: "t"}
	for name, o := range map[string]Options{
		"no client":  {Schedules: []Config{good}},
		"bad mode":   {Client: c, Schedules: []Config{good}, Mode: trigger.Mode{Mode: "active"}},
		"bad config": {Client: c, Schedules: []Config{{Name: "a"}}},
		"duplicate":  {Client: c, Schedules: []Config{good, good}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDisabledScheduleDoesNotRun(t *testing.T) {
	srv := newFakeServer(t)
	srv.setLast("on", t0)
	srv.setLast("off", t0)
	clk := newFakeClock(t0)
	cfgs := []Config{
		{Name: "on", Cron: "* * * * *", Template: "t"},
		{Name: "off", Cron: "* * * * *", Template: "t", Enabled: new(false)},
	}
	startScheduler(t, Options{Client: srv.newClient(t), Schedules: cfgs, Mode: concurrent(), Clock: clk})
	clk.runUntil(t, 1, t0.Add(2*time.Minute))
	if got, want := srv.instanceNames(), names("on", minutes(t0, 1, 2)...); !slices.Equal(got, want) {
		t.Errorf("instances %v, want %v", got, want)
	}
}

// TestReportSpec: a scheduler reports its config at start when the core
// DB holds another (here: none), without moving last, so the server can
// show the next fire times and fire it now.
func TestReportSpec(t *testing.T) {
	srv := newFakeServer(t)
	start := utc("2026-03-28T12:00:00Z")
	srv.setLast("night", start)
	cfg := Config{Name: "night", Cron: "30 2 * * *", Timezone: "Europe/Berlin", Template: "t", Priority: 4}
	startScheduler(t, Options{Client: srv.newClient(t), Schedules: []Config{cfg}, Mode: concurrent(), Clock: newFakeClock(start)})
	var st state
	eventually.True(t, 10*time.Second, func() bool {
		_ = json.Unmarshal(srv.state("night"), &st)
		return st.Spec != nil
	}, "the reported config")
	if sp := st.Spec; sp.Cron != "30 2 * * *" || sp.Timezone != "Europe/Berlin" || sp.Template != "t" || sp.Priority != 4 || sp.Disabled || !srv.last("night").Equal(start) {
		t.Errorf("stored spec %+v last %v", st.Spec, srv.last("night"))
	}
}

func TestNextFires(t *testing.T) {
	spec := model.ScheduleSpec{Cron: "30 2 * * *", Timezone: "Europe/Berlin", Template: "t"}
	got, err := NextFires(spec, utc("2026-03-28T12:00:00Z"), 3)
	want := []time.Time{utc("2026-03-29T01:00:00Z"), utc("2026-03-30T00:30:00Z"), utc("2026-03-31T00:30:00Z")}
	if err != nil || !slices.EqualFunc(got, want, time.Time.Equal) {
		t.Errorf("NextFires = %v %v, want %v (spring forward fires once at the change)", got, err, want)
	}
	if _, err := NextFires(model.ScheduleSpec{Cron: "0 0 30 2 *"}, time.Time{}, 1); err == nil {
		t.Error("a cron that never fires was accepted")
	}
}
