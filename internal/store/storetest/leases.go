package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// sameLease fails unless got is the lease described.
func sameLease(t *testing.T, what string, got model.Lease, name, holder string, epoch int64, until time.Time) {
	t.Helper()
	if got.Name != name || got.Holder != holder || got.Epoch != epoch {
		t.Errorf("%s = %+v, want %s held by %q epoch %d", what, got, name, holder, epoch)
	}
	sameTime(t, what+" Until", got.Until, until)
}

// testLeases covers LeaseAcquire, LeaseRelease and LeaseList.
func testLeases(t *testing.T, open Opener) {
	t.Run("Lifecycle", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		ttl := 10 * time.Second
		acquire := func(holder string, now time.Time) (model.Lease, error) {
			return s.LeaseAcquire(t.Context(), "group/sched", holder, ttl, now)
		}
		must := func(holder string, now time.Time) model.Lease {
			t.Helper()
			l, err := acquire(holder, now)
			if err != nil {
				t.Fatalf("LeaseAcquire(%s at %v): %v", holder, now, err)
			}
			return l
		}

		sameLease(t, "free lease", must("a", T0), "group/sched", "a", 1, at(ttl))
		sameLease(t, "renewal", must("a", at(5*time.Second)), "group/sched", "a", 1, at(15*time.Second))

		cur, err := acquire("b", at(6*time.Second))
		wantErr(t, "acquire a lease held by another", err, model.ErrConflict)
		sameLease(t, "current lease on conflict", cur, "group/sched", "a", 1, at(15*time.Second))

		sameLease(t, "after expiry", must("b", at(20*time.Second)), "group/sched", "b", 2, at(30*time.Second))
		_, err = acquire("a", at(21*time.Second))
		wantErr(t, "old holder after take-over", err, model.ErrConflict)

		// Release by someone else is a no-op.
		if err := s.LeaseRelease(t.Context(), "group/sched", "a"); err != nil {
			t.Fatalf("LeaseRelease by a non-holder: %v", err)
		}
		_, err = acquire("c", at(22*time.Second))
		wantErr(t, "acquire after a non-holder's release", err, model.ErrConflict)

		if err := s.LeaseRelease(t.Context(), "group/sched", "b"); err != nil {
			t.Fatalf("LeaseRelease: %v", err)
		}
		sameLease(t, "after release", must("c", at(23*time.Second)), "group/sched", "c", 3, at(33*time.Second))

		if err := s.LeaseRelease(t.Context(), "no/such/lease", "x"); err != nil {
			t.Fatalf("LeaseRelease of an unknown lease: %v", err)
		}
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		for _, name := range []string{"inst/1", "group/y", "group/x", "groupies"} {
			if _, err := s.LeaseAcquire(t.Context(), name, "h-"+name, time.Minute, T0); err != nil {
				t.Fatalf("LeaseAcquire(%s): %v", name, err)
			}
		}
		for _, tc := range []struct {
			prefix string
			want   []string
		}{
			{"group/", []string{"group/x", "group/y"}},
			{"", []string{"group/x", "group/y", "groupies", "inst/1"}},
			{"inst/1", []string{"inst/1"}},
			{"zzz", nil},
			{"group%", nil}, // no pattern matching
			{"group_", nil},
		} {
			got, err := s.LeaseList(t.Context(), tc.prefix)
			if err != nil {
				t.Fatalf("LeaseList(%q): %v", tc.prefix, err)
			}
			var names []string
			for _, l := range got {
				names = append(names, l.Name)
			}
			if fmt.Sprint(names) != fmt.Sprint(tc.want) {
				t.Errorf("LeaseList(%q) = %v, want %v", tc.prefix, names, tc.want)
			}
			for _, l := range got {
				sameLease(t, "listed", l, l.Name, "h-"+l.Name, 1, at(time.Minute))
			}
		}
	})

	t.Run("ConcurrentAcquire", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const n = 10
		var (
			wg     sync.WaitGroup
			leases = make([]model.Lease, n)
			errs   = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				leases[i], errs[i] = s.LeaseAcquire(t.Context(), "race", fmt.Sprintf("h%d", i), time.Minute, T0)
			})
		}
		wg.Wait()
		winner := ""
		for i := range n {
			switch {
			case errs[i] == nil:
				if winner != "" {
					t.Fatalf("two holders: %s and h%d", winner, i)
				}
				winner = fmt.Sprintf("h%d", i)
			case !errors.Is(errs[i], model.ErrConflict):
				t.Fatalf("acquire %d: %v, want nil or ErrConflict", i, errs[i])
			}
		}
		if winner == "" {
			t.Fatal("no holder")
		}
		for i := range n {
			sameLease(t, fmt.Sprintf("lease seen by h%d", i), leases[i], "race", winner, 1, at(time.Minute))
		}
	})
}
