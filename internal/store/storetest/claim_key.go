package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// claimKey claims up to n jobs of typ for proc under an Idempotency-Key.
func claimKey(t *testing.T, s store.Store, typ, proc, key string, n int, now time.Time) []model.Job {
	t.Helper()
	return claim(t, s, store.ClaimParams{
		Processor: proc, Slots: map[string]int{typ: n}, LeaseTTL: 30 * time.Second, Now: now, Key: key,
	})
}

// sameClaim fails unless got holds the jobs of want: same ids and epochs,
// in the same order.
func sameClaim(t *testing.T, what string, got, want []model.Job) {
	t.Helper()
	type idEpoch struct{ id, epoch int64 }
	pairs := func(jobs []model.Job) []idEpoch {
		out := make([]idEpoch, len(jobs))
		for i, j := range jobs {
			out[i] = idEpoch{j.ID, j.Epoch}
		}
		return out
	}
	if g, w := pairs(got), pairs(want); !slices.Equal(g, w) {
		t.Fatalf("%s: got jobs (id, epoch) %v, want %v", what, g, w)
	}
}

// running counts the running jobs.
func running(t *testing.T, s store.Store) int {
	t.Helper()
	counts, err := s.JobCounts(t.Context())
	if err != nil {
		t.Fatalf("JobCounts: %v", err)
	}
	return counts[model.JobRunning]
}

// testJobClaimKey covers ClaimParams.Key: a retried claim returns the jobs
// of the first one instead of claiming more.
func testJobClaimKey(t *testing.T, open Opener) {
	t.Run("RepeatReturnsSameJobs", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insert(t, s, T0, model.JobSpec{Type: "k.a"}, model.JobSpec{Type: "k.a", Priority: 5})
		insertN(t, s, T0, "k.a", 4)
		first := claimKey(t, s, "k.a", "p1", "K", 3, T0)
		if len(first) != 3 {
			t.Fatalf("first claim got %d jobs, want 3", len(first))
		}
		// Later, and asking for more: still the first answer.
		again := claimKey(t, s, "k.a", "p1", "K", 5, at(time.Second))
		sameClaim(t, "repeat of K", again, first)
		if n := running(t, s); n != 3 {
			t.Fatalf("%d jobs running after the repeat, want 3", n)
		}
		for i := range first {
			sameJob(t, "repeat of K", again[i], first[i])
		}
	})

	t.Run("OtherKeyOrProcessorClaims", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insertN(t, s, T0, "k.b", 6)
		first := claimKey(t, s, "k.b", "p1", "K", 2, T0)
		other := claimKey(t, s, "k.b", "p1", "K2", 2, T0)
		// Keys belong to a processor: p2 repeating p1's key claims anew.
		p2 := claimKey(t, s, "k.b", "p2", "K", 2, T0)
		seen := map[int64]bool{}
		for _, j := range slices.Concat(first, other, p2) {
			if seen[j.ID] {
				t.Fatalf("job %d handed out twice", j.ID)
			}
			seen[j.ID] = true
		}
		if len(seen) != 6 {
			t.Fatalf("claimed %d distinct jobs, want 6", len(seen))
		}
		sameClaim(t, "repeat of K", claimKey(t, s, "k.b", "p1", "K", 2, T0), first)
		sameClaim(t, "repeat of K2", claimKey(t, s, "k.b", "p1", "K2", 2, T0), other)
	})

	t.Run("FreshWorkOnceFinished", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		insertN(t, s, T0, "k.c", 4)
		first := claimKey(t, s, "k.c", "p1", "K", 2, T0)
		// One finished: the repeat returns the one still running.
		complete(t, s, model.Completion{ID: first[0].ID, Epoch: first[0].Epoch}, at(time.Second))
		sameClaim(t, "repeat after one completion", claimKey(t, s, "k.c", "p1", "K", 2, at(time.Second)), first[1:])
		complete(t, s, model.Completion{ID: first[1].ID, Epoch: first[1].Epoch}, at(time.Second))
		fresh := claimKey(t, s, "k.c", "p1", "K", 2, at(2*time.Second))
		if len(fresh) != 2 || slices.ContainsFunc(fresh, func(j model.Job) bool {
			return j.ID == first[0].ID || j.ID == first[1].ID
		}) {
			t.Fatalf("claim with K after its jobs finished: %v, want the 2 others", ids(fresh))
		}
	})

	t.Run("EmptyAnswerIsNotRemembered", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if got := claimKey(t, s, "k.d", "p1", "K", 2, T0); len(got) != 0 {
			t.Fatalf("claimed %v from an empty store", ids(got))
		}
		insertN(t, s, T0, "k.d", 1)
		if got := claimKey(t, s, "k.d", "p1", "K", 2, T0); len(got) != 1 {
			t.Fatalf("claim with K after work arrived: %d jobs, want 1", len(got))
		}
	})
}
