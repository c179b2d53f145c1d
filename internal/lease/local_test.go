package lease

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/store/sqlite"
)

// localCopy is an elector on a real store, driven by a fake clock.
type localCopy struct {
	acq    *faulty
	led    chan model.Lease // each term's lease
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func startLocal(t *testing.T, acq Acquirer, holder string, clk *clock.Fake) *localCopy {
	t.Helper()
	c := &localCopy{acq: &faulty{Acquirer: acq}, led: make(chan model.Lease, 4), done: make(chan error, 1)}
	e := &Elector{Acquirer: c.acq, Name: testName, Holder: holder, TTL: DefaultTTL, Clock: clk, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go func() {
		c.done <- e.Run(ctx, func(ctx context.Context, l model.Lease) error {
			c.led <- l
			<-ctx.Done()
			return nil
		})
	}()
	t.Cleanup(func() { c.stop(t) })
	return c
}

// stop ends the copy and waits for Run to return; later calls do nothing.
func (c *localCopy) stop(t *testing.T) {
	t.Helper()
	c.once.Do(func() {
		c.cancel()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second): // bounds a failing test only
			t.Error("elector did not stop")
		}
	})
}

// nextTerm waits for the copy to start leading.
func (c *localCopy) nextTerm(t *testing.T) model.Lease {
	t.Helper()
	select {
	case l := <-c.led:
		return l
	case <-time.After(10 * time.Second): // bounds a failing test only
		t.Fatal("no term started")
		return model.Lease{}
	}
}

// notLeading checks that the copy has not started a term.
func (c *localCopy) notLeading(t *testing.T, when string) {
	t.Helper()
	select {
	case l := <-c.led:
		t.Fatalf("%s: a term started with %+v", when, l)
	default:
	}
}

// block waits until n waits are pending on the fake clock.
func block(t *testing.T, clk *clock.Fake, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // bounds a failing test only
	defer cancel()
	if err := clk.BlockUntil(ctx, n); err != nil {
		t.Fatalf("%d waits pending on the clock, want %d: %v", clk.Waiting(), n, err)
	}
}

// storeLeases takes leases straight from a store, as a server does for its
// own duties.
type storeLeases struct {
	store store.LeaseStore
	now   func() time.Time
}

func (l storeLeases) LeaseAcquire(ctx context.Context, name, holder string, ttl time.Duration) (model.Lease, error) {
	return l.store.LeaseAcquire(ctx, name, holder, ttl, l.now())
}

func (l storeLeases) LeaseRelease(ctx context.Context, name, holder string) error {
	return l.store.LeaseRelease(ctx, name, holder)
}

// The elector on a real SQLite store: a standby takes
// over at once when the leader stops (release), and only after the lease
// expired when the leader dies without releasing; every new holder gets a
// new epoch.
func TestLocalSQLite(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "dpe.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clk := clock.NewFake(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	local := storeLeases{store: st, now: clk.Now}
	renew := DefaultTTL / 3

	a := startLocal(t, local, "a", clk)
	if l := a.nextTerm(t); l.Epoch != 1 || l.Holder != "a" {
		t.Fatalf("a leads with %+v, want epoch 1", l)
	}
	b := startLocal(t, local, "b", clk)
	block(t, clk, 2) // a waits to renew, b to retry

	// Several renewals: a keeps the lease, b keeps meeting a conflict.
	for range 6 {
		clk.Advance(renew)
		block(t, clk, 2)
	}
	b.notLeading(t, "while a renews")

	// a stops: it releases, and b takes over at its next retry.
	a.stop(t)
	clk.Advance(renew)
	l := b.nextTerm(t)
	if l.Epoch != 2 || l.Holder != "b" {
		t.Fatalf("b leads with %+v, want epoch 2", l)
	}
	block(t, clk, 1) // b waits to renew

	// b dies without releasing: c must wait for the lease to expire.
	c := startLocal(t, local, "c", clk)
	block(t, clk, 2)
	b.acq.set(failing)
	b.stop(t)
	until := clk.Now().Add(DefaultTTL) // b took the lease now and never renewed
	clk.Advance(renew)                 // fires b's abandoned renewal wait, and c's retry
	block(t, clk, 1)                   // from here on, only c waits
	for clk.Now().Before(until) {
		c.notLeading(t, "before b's lease expired at "+until.String())
		clk.Advance(renew / 2)
		block(t, clk, 1)
	}
	clk.Advance(renew)
	if l := c.nextTerm(t); l.Epoch != 3 || l.Holder != "c" {
		t.Fatalf("c leads with %+v, want epoch 3", l)
	}
}
