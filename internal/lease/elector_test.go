package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/model"
)

// The tests run in testing/synctest bubbles: clock.Real and the context
// timers run on the bubble's fake time, so a TTL of seconds costs no real
// time, and synctest.Wait tells when every copy is blocked.

const (
	testName = "worker/default"
	ttl      = 3 * time.Second
	renew    = ttl / 3
)

// memLeases is an in-memory Acquirer with the store's rules (see
// sqlite.Store.LeaseAcquire), timed by the same clock as the electors.
type memLeases struct {
	clk    clock.Clock
	mu     sync.Mutex
	leases map[string]model.Lease
}

func newMemLeases() *memLeases {
	return &memLeases{clk: clock.Real{}, leases: map[string]model.Lease{}}
}

func (m *memLeases) LeaseAcquire(_ context.Context, name, holder string, ttl time.Duration) (model.Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.clk.Now()
	cur, ok := m.leases[name]
	l := model.Lease{Name: name, Holder: holder, Until: now.Add(ttl), Epoch: cur.Epoch + 1}
	switch {
	case ok && cur.Holder == holder:
		l.Epoch = cur.Epoch // renewal
	case ok && cur.Holder != "" && !now.After(cur.Until):
		return cur, fmt.Errorf("lease %q held by %s: %w", name, cur.Holder, model.ErrConflict)
	}
	m.leases[name] = l
	return l, nil
}

func (m *memLeases) LeaseRelease(_ context.Context, name, holder string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.leases[name]; cur.Holder == holder {
		cur.Holder, cur.Until = "", time.Time{}
		m.leases[name] = cur
	}
	return nil
}

func (m *memLeases) get(name string) model.Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leases[name]
}

// fault is how a copy's calls to the lease fail.
type fault int

const (
	healthy fault = iota
	failing       // every call fails at once (the server refuses or is down)
	hanging       // every call hangs until its context ends (a partition)
)

var errUnreachable = errors.New("server unreachable")

// faulty passes calls to the shared leases until told to fail.
type faulty struct {
	Acquirer
	mu    sync.Mutex
	fault fault
	slow  time.Duration // a granted acquire answers this late
}

func (f *faulty) setSlow(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.slow = d
}

func (f *faulty) set(x fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fault = x
}

func (f *faulty) fail(ctx context.Context) error {
	f.mu.Lock()
	x := f.fault
	f.mu.Unlock()
	switch x {
	case failing:
		return errUnreachable
	case hanging:
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *faulty) LeaseAcquire(ctx context.Context, name, holder string, ttl time.Duration) (model.Lease, error) {
	if err := ctx.Err(); err != nil {
		return model.Lease{}, err // as the store and the client: an ended call is not made
	}
	if err := f.fail(ctx); err != nil {
		return model.Lease{}, err
	}
	l, err := f.Acquirer.LeaseAcquire(ctx, name, holder, ttl)
	f.mu.Lock()
	slow := f.slow
	f.mu.Unlock()
	if err == nil && slow > 0 {
		// The server granted the lease now; the answer arrives late.
		if err := clock.Sleep(ctx, clock.Real{}, slow); err != nil {
			return model.Lease{}, err
		}
	}
	return l, err
}

func (f *faulty) LeaseRelease(ctx context.Context, name, holder string) error {
	if err := f.fail(ctx); err != nil {
		return err
	}
	return f.Acquirer.LeaseRelease(ctx, name, holder)
}

// term is one stretch of leadership as the lead function saw it.
type term struct {
	epoch      int64
	start, end time.Time // end is zero while it lasts
}

// member is one copy of a role competing for the lease.
type member struct {
	acq    *faulty
	e      *Elector
	cancel context.CancelFunc
	done   chan error
	once   sync.Once

	mu    sync.Mutex
	terms []term
}

// logCounter counts the records at warn level or above.
type logCounter struct {
	mu    sync.Mutex
	warns []string
}

func (c *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return c }
func (c *logCounter) WithGroup(string) slog.Handler            { return c }
func (c *logCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		c.mu.Lock()
		c.warns = append(c.warns, r.Message)
		c.mu.Unlock()
	}
	return nil
}

func (c *logCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.warns)
}

// start runs an elector for holder on the shared leases until the test
// stops it (or the bubble ends). Its lead function records each term and
// works until its context ends.
func start(t *testing.T, shared Acquirer, holder string, clk clock.Clock, log *logCounter) *member {
	t.Helper()
	m := &member{acq: &faulty{Acquirer: shared}, done: make(chan error, 1)}
	if log == nil {
		log = &logCounter{}
	}
	m.e = &Elector{Acquirer: m.acq, Name: testName, Holder: holder, TTL: ttl, Clock: clk, Log: slog.New(log)}
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go func() { m.done <- m.e.Run(ctx, m.lead) }()
	t.Cleanup(m.stop)
	return m
}

// The times are the bubble's true time (the time package), whatever the
// elector's clock says.
func (m *member) lead(ctx context.Context, l model.Lease) error {
	now := time.Now().UTC()
	m.mu.Lock()
	m.terms = append(m.terms, term{epoch: l.Epoch, start: now})
	m.mu.Unlock()
	<-ctx.Done()
	m.mu.Lock()
	m.terms[len(m.terms)-1].end = time.Now().UTC()
	m.mu.Unlock()
	return nil
}

// stop ends the copy and waits for Run to return; later calls do nothing.
func (m *member) stop() {
	m.once.Do(func() {
		m.cancel()
		<-m.done
	})
}

func (m *member) history() []term {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]term(nil), m.terms...)
}

// leading reports whether the copy is in a term now.
func (m *member) leading() bool {
	h := m.history()
	return len(h) > 0 && h[len(h)-1].end.IsZero()
}

// advance lets d of bubble time pass (no real time) and waits until every
// goroutine of the bubble is blocked again.
func advance(d time.Duration) {
	time.Sleep(d) // bubble time: synctest moves it when all are blocked
	synctest.Wait()
}

// pair starts leader a, then standby b, on shared leases.
func pair(t *testing.T) (shared *memLeases, a, b *member) {
	t.Helper()
	shared = newMemLeases()
	a = start(t, shared, "a", clock.Real{}, nil)
	synctest.Wait()
	if !a.leading() {
		t.Fatal("a does not lead a free lease")
	}
	b = start(t, shared, "b", clock.Real{}, nil)
	synctest.Wait()
	if b.leading() {
		t.Fatal("b leads a lease held by a")
	}
	return shared, a, b
}

// A leader that stops renewing (cut off, or dead without releasing):
// the standby takes over once the lease has expired, not before, and
// within one standby retry of it.
func TestTakeover(t *testing.T) {
	tests := []struct {
		name string
		kill func(a *member)
	}{
		{"leader's calls fail", func(a *member) { a.acq.set(failing) }},
		{"leader partitioned", func(a *member) { a.acq.set(hanging) }},
		{"leader dies", func(a *member) {
			// Dead: it stops, and its release never arrives.
			a.acq.set(failing)
			a.stop()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				shared, a, b := pair(t)
				advance(5 * ttl) // a renews through several TTLs; b waits
				if !a.leading() || b.leading() {
					t.Fatalf("after 5 TTLs: a leading %v, b leading %v", a.leading(), b.leading())
				}
				held := shared.get(testName)
				tt.kill(a)
				synctest.Wait()
				// Move to the old lease's last instant, then past it.
				advance(time.Until(held.Until))
				if b.leading() {
					t.Fatalf("b took over at %v, before the lease held until %v ended", time.Now(), held.Until)
				}
				advance(renew + time.Millisecond)
				hb := b.history()
				if len(hb) != 1 {
					t.Fatalf("b has %d terms one standby retry after the lease ended, want 1", len(hb))
				}
				if !hb[0].start.After(held.Until) {
					t.Errorf("b took over at %v, not after the lease's end %v", hb[0].start, held.Until)
				}
				if hb[0].epoch != held.Epoch+1 {
					t.Errorf("b's epoch %d, want %d", hb[0].epoch, held.Epoch+1)
				}
				if ha := a.history(); ha[len(ha)-1].end.IsZero() || ha[len(ha)-1].end.After(hb[0].start) {
					t.Errorf("a's term %+v overlaps b's from %v", ha[len(ha)-1], hb[0].start)
				}
			})
		})
	}
}

// A leader whose renewals fail stops its work (the lead ctx ends) before
// its lease would end, so it never acts while another may hold the lease.
func TestRenewalFailureStopsLeaderBeforeLeaseEnds(t *testing.T) {
	for _, tt := range []struct {
		name  string
		fault fault
	}{{"calls fail", failing}, {"calls hang", hanging}} {
		for _, after := range []time.Duration{0, renew / 2, renew + renew/2} {
			t.Run(fmt.Sprintf("%s %v into a term", tt.name, after), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					shared := newMemLeases()
					a := start(t, shared, "a", clock.Real{}, nil)
					synctest.Wait()
					advance(after)
					held := shared.get(testName)
					a.acq.set(tt.fault)
					advance(ttl + time.Millisecond)
					h := a.history()
					if len(h) != 1 || h[0].end.IsZero() {
						t.Fatalf("a's terms %+v: still leading after its lease (until %v) ended", h, held.Until)
					}
					if !h[0].end.Before(held.Until) {
						t.Errorf("a stopped its work at %v, not before its lease ended at %v", h[0].end, held.Until)
					}
				})
			})
		}
	}
}

// A lease granted at once but answered late counts from when it was asked
// for: the leader still stands down before the lease ends.
func TestSlowGrantStandsDownBeforeLeaseEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := newMemLeases()
		a := &member{acq: &faulty{Acquirer: shared}, done: make(chan error, 1)}
		a.acq.setSlow(ttl / 2)
		a.e = &Elector{Acquirer: a.acq, Name: testName, Holder: "a", TTL: ttl, Clock: clock.Real{}, Log: slog.New(slog.DiscardHandler)}
		ctx, cancel := context.WithCancel(t.Context())
		a.cancel = cancel
		go func() { a.done <- a.e.Run(ctx, a.lead) }()
		t.Cleanup(a.stop)
		synctest.Wait() // a's acquire is granted; its answer is on its way
		held := shared.get(testName)
		a.acq.set(failing)
		advance(2 * ttl)
		h := a.history()
		if len(h) != 1 || h[0].end.IsZero() {
			t.Fatalf("a's terms %+v: still leading after its lease (until %v) ended", h, held.Until)
		}
		if !h[0].end.Before(held.Until) {
			t.Errorf("a stopped its work at %v, not before its lease ended at %v", h[0].end, held.Until)
		}
	})
}

// A transient renewal failure with time left does not stop the leader.
func TestTransientRenewalFailureKeepsLeading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := newMemLeases()
		a := start(t, shared, "a", clock.Real{}, nil)
		synctest.Wait()
		a.acq.set(failing)
		advance(renew) // the first renewal fails, with two thirds of the TTL left
		a.acq.set(healthy)
		advance(3 * ttl)
		if h := a.history(); len(h) != 1 || !h[0].end.IsZero() {
			t.Errorf("a's terms after one failed renewal: %+v, want one that lasts", h)
		}
	})
}

// A leader that stops releases its lease: the standby takes over at its
// next retry, well before the TTL would have run out.
func TestReleaseOnStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared, a, b := pair(t)
		advance(ttl)
		stopped := time.Now()
		a.stop()
		if l := shared.get(testName); l.Holder != "" {
			t.Fatalf("lease after a stopped: %+v, want released", l)
		}
		if h := a.history(); len(h) != 1 || h[0].end.After(stopped) {
			t.Errorf("a's terms %+v: work not stopped when Run returned at %v", h, stopped)
		}
		advance(renew)
		hb := b.history()
		if len(hb) != 1 {
			t.Fatalf("b has %d terms one standby retry after a released, want 1", len(hb))
		}
		if took := hb[0].start.Sub(stopped); took > renew {
			t.Errorf("b took over %v after the release, want within one standby retry (%v)", took, renew)
		}
	})
}

// Lead returning gives the lease up; the copy competes again.
func TestLeadReturningGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := newMemLeases()
		var terms atomic.Int32
		e := &Elector{Acquirer: shared, Name: testName, Holder: "a", TTL: ttl, Log: slog.New(slog.DiscardHandler)}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() {
			done <- e.Run(ctx, func(context.Context, model.Lease) error {
				terms.Add(1)
				return errors.New("work failed")
			})
		}()
		synctest.Wait()
		if l := shared.get(testName); terms.Load() != 1 || l.Holder != "" {
			t.Fatalf("after lead failed: %d terms, lease %+v; want 1 and released", terms.Load(), l)
		}
		advance(renew)
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
		if n := terms.Load(); n != 2 {
			t.Errorf("%d terms, want a second after one standby retry", n)
		}
	})
}

// A standby meeting a held lease (a conflict) logs nothing at warn, however
// long it waits; neither does the leader while it renews.
func TestConflictDoesNotWarn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := newMemLeases()
		la, lb := &logCounter{}, &logCounter{}
		a := start(t, shared, "a", clock.Real{}, la)
		synctest.Wait()
		b := start(t, shared, "b", clock.Real{}, lb)
		advance(100 * ttl)
		if !a.leading() || b.leading() {
			t.Fatalf("a leading %v, b leading %v", a.leading(), b.leading())
		}
		if n := la.count() + lb.count(); n != 0 {
			t.Errorf("%d warnings during 100 TTLs of conflicts, want none", n)
		}
	})
}

// A standby that cannot reach the lease warns once per outage, not at
// every retry, and takes the lease once it can.
func TestOutageWarnsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		shared := newMemLeases()
		log := &logCounter{}
		a := start(t, shared, "a", clock.Real{}, log)
		a.acq.set(failing)
		advance(100 * ttl)
		if n := log.count(); n != 1 {
			t.Errorf("%d warnings during an outage of 100 TTLs, want 1", n)
		}
		a.acq.set(healthy)
		advance(renew)
		if !a.leading() {
			t.Error("a does not lead after the outage")
		}
		if n := log.count(); n != 1 {
			t.Errorf("%d warnings after the outage ended, want still 1", n)
		}
	})
}

func TestTTL(t *testing.T) {
	tests := []struct {
		ttl, want time.Duration
		err       bool
	}{
		{ttl: 0, want: DefaultTTL},
		{ttl: MinTTL, want: MinTTL},
		{ttl: MinTTL - time.Millisecond, err: true},
		{ttl: time.Second, err: true},
		{ttl: -time.Second, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.ttl.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				shared := newMemLeases()
				e := &Elector{Acquirer: shared, Name: testName, Holder: "a", TTL: tt.ttl, Log: slog.New(slog.DiscardHandler)}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan error, 1)
				leds := make(chan model.Lease, 1)
				go func() {
					done <- e.Run(ctx, func(ctx context.Context, l model.Lease) error {
						leds <- l
						<-ctx.Done()
						return nil
					})
				}()
				synctest.Wait()
				cancel()
				err := <-done
				var led model.Lease
				select {
				case led = <-leds:
				default:
				}
				if tt.err {
					if err == nil || led.Epoch != 0 {
						t.Errorf("ttl %v: Run = %v, led %+v; want refused without leading", tt.ttl, err, led)
					}
					return
				}
				if err != nil {
					t.Fatalf("ttl %v: Run = %v", tt.ttl, err)
				}
				if e.TTL != tt.want || led.Epoch != 1 {
					t.Errorf("ttl %v: used %v and led %+v; want %v and epoch 1", tt.ttl, e.TTL, led, tt.want)
				}
			})
		})
	}
}

// steppedClock is the clock of a host whose wall clock is set while the
// elector runs (an NTP step): Now moves by each step, while its waits and
// its stopwatch keep measuring the time that really passes.
type steppedClock struct {
	clock.Real
	mu     sync.Mutex
	offset time.Duration
}

// step sets the wall clock d forward (d < 0: back).
func (c *steppedClock) step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

func (c *steppedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Real.Now().Add(c.offset)
}

// A wall clock set back while a leader holds the lease does not stretch
// its leadership: once its renewals fail it stands down before the lease
// it last renewed ends, as if the clock had not moved. The step comes at
// the moments where a wall-clock bound would be stretched: after a
// renewal, and while a granted acquire or renewal is on its way back.
func TestWallClockStepBackDoesNotStretchLease(t *testing.T) {
	tests := []struct {
		name  string
		slow  time.Duration // every granted acquire answers this late
		after time.Duration // into the run when the clock is set back and the calls start to fail
	}{
		{"after a renewal", 0, renew + renew/2},
		{"while the grant is on its way", ttl / 4, 0},
		// The first term starts at ttl/4 and renews at ttl/4+renew; the
		// renewal's answer arrives ttl/4 later.
		{"while a renewal is on its way", ttl / 4, ttl/4 + renew + ttl/8},
	}
	for _, tt := range tests {
		for _, f := range []struct {
			name  string
			fault fault
		}{{"calls fail", failing}, {"calls hang", hanging}} {
			t.Run(tt.name+", "+f.name, func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					shared := newMemLeases()
					clk := &steppedClock{}
					a := &member{acq: &faulty{Acquirer: shared, slow: tt.slow}, done: make(chan error, 1)}
					a.e = &Elector{Acquirer: a.acq, Name: testName, Holder: "a", TTL: ttl, Clock: clk, Log: slog.New(slog.DiscardHandler)}
					ctx, cancel := context.WithCancel(t.Context())
					a.cancel = cancel
					go func() { a.done <- a.e.Run(ctx, a.lead) }()
					t.Cleanup(a.stop)
					advance(tt.after)
					held := shared.get(testName)
					if held.Holder != "a" {
						t.Fatalf("lease %+v, want held by a", held)
					}
					clk.step(-time.Hour)
					a.acq.set(f.fault)
					advance(2 * ttl)
					h := a.history()
					if len(h) != 1 || h[0].end.IsZero() {
						t.Fatalf("a's terms %+v: still leading after its lease (until %v) ended", h, held.Until)
					}
					if !h[0].end.Before(held.Until) {
						t.Errorf("a stopped its work at %v, not before its lease ended at %v", h[0].end, held.Until)
					}
				})
			})
		}
	}
}

// A wall clock set either way does not make a healthy leader stand down.
func TestWallClockStepKeepsHealthyLeader(t *testing.T) {
	for _, step := range []time.Duration{-time.Hour, time.Hour} {
		t.Run(step.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				shared := newMemLeases()
				clk := &steppedClock{}
				a := start(t, shared, "a", clk, nil)
				synctest.Wait()
				b := start(t, shared, "b", clock.Real{}, nil)
				advance(renew / 2)
				clk.step(step)
				advance(5 * ttl)
				if h := a.history(); len(h) != 1 || !h[0].end.IsZero() {
					t.Errorf("a's terms after its clock was set %v: %+v, want one that lasts", step, h)
				}
				if b.leading() {
					t.Error("b leads while a renews")
				}
			})
		})
	}
}
