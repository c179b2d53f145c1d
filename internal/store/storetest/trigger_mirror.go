package storetest

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// testTriggerMirror covers MirrorGet, MirrorPut, MirrorTouch and
// MirrorDelete, and Mirrored.
func testTriggerMirror(t *testing.T, open TriggerOpener) {
	t.Run("PutGet", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		a := mirrorEntry("in/a.wav", "size=10,mtime=1", `{"size": 10, "path": "/in/a.wav", "tags": ["x", 1.5, null]}`)
		b := mirrorEntry("in/b.wav", "size=20,mtime=2", "")
		u := mirrorEntry("in/é 日本 %_.wav", "ü", `{"name": "é 日本"}`)
		inTrigger(t, s, "in", at(time.Minute), func(tx store.TriggerTx) {
			if err := tx.MirrorPut([]store.MirrorEntry{a, b, u}); err != nil {
				t.Fatalf("MirrorPut: %v", err)
			}
			// The transaction sees its own writes.
			m, err := tx.MirrorGet([]string{a.Key, "missing", b.Key, u.Key})
			if err != nil {
				t.Fatalf("MirrorGet: %v", err)
			}
			sameEntries(t, "MirrorGet in the transaction", mirrorMap(t, m), []store.MirrorEntry{
				seenAt(a, at(time.Minute)), seenAt(b, at(time.Minute)), seenAt(u, at(time.Minute)),
			})
		})
		sameEntries(t, "MirrorGet after commit", mirrorAll(t, s, "in", at(2*time.Minute), b.Key, a.Key, u.Key, "missing"),
			[]store.MirrorEntry{seenAt(a, at(time.Minute)), seenAt(b, at(time.Minute)), seenAt(u, at(time.Minute))})
		if got := getTrigger(t, s, "in").Mirrored; got != 3 {
			t.Errorf("TriggerGet Mirrored = %d, want 3", got)
		}
	})

	t.Run("PutReplaces", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inTrigger(t, s, "in", at(time.Minute), func(tx store.TriggerTx) {
			if err := tx.MirrorPut([]store.MirrorEntry{mirrorEntry("a", "f1", `{"v": 1}`), mirrorEntry("b", "f1", `{"v": 1}`)}); err != nil {
				t.Fatalf("MirrorPut: %v", err)
			}
		})
		// A put of an existing key replaces fingerprint and data (none
		// stores none) and moves SeenAt; a put may also carry a SeenAt of
		// its own, which is ignored.
		inTrigger(t, s, "in", at(2*time.Minute), func(tx store.TriggerTx) {
			e := mirrorEntry("a", "f2", "")
			e.SeenAt = at(-time.Hour)
			if err := tx.MirrorPut([]store.MirrorEntry{e}); err != nil {
				t.Fatalf("MirrorPut: %v", err)
			}
		})
		sameEntries(t, "after the second put", mirrorAll(t, s, "in", at(3*time.Minute), "a", "b"), []store.MirrorEntry{
			seenAt(mirrorEntry("a", "f2", ""), at(2*time.Minute)),
			seenAt(mirrorEntry("b", "f1", `{"v": 1}`), at(time.Minute)),
		})
	})

	t.Run("Seq", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// A put stores each entry's Seq (the change number of the
		// observation that wrote it), also on replace and within a chunk
		// bigger than one statement; a touch leaves it.
		var many []store.MirrorEntry
		for i := range 700 {
			e := mirrorEntry(fmt.Sprintf("k%04d", i), "f1", "")
			e.Seq = int64(i + 1)
			many = append(many, e)
		}
		inTrigger(t, s, "in", at(time.Minute), func(tx store.TriggerTx) {
			if err := tx.MirrorPut(many); err != nil {
				t.Fatalf("MirrorPut: %v", err)
			}
		})
		inTrigger(t, s, "in", at(2*time.Minute), func(tx store.TriggerTx) {
			e := mirrorEntry("k0000", "f2", "")
			e.Seq = 1 << 40
			if err := tx.MirrorPut([]store.MirrorEntry{e}); err != nil {
				t.Fatalf("MirrorPut: %v", err)
			}
			if err := tx.MirrorTouch([]string{"k0699"}); err != nil {
				t.Fatalf("MirrorTouch: %v", err)
			}
		})
		want0 := seenAt(mirrorEntry("k0000", "f2", ""), at(2*time.Minute))
		want0.Seq = 1 << 40
		want699 := seenAt(mirrorEntry("k0699", "f1", ""), at(2*time.Minute))
		want699.Seq = 700
		want350 := seenAt(mirrorEntry("k0350", "f1", ""), at(time.Minute))
		want350.Seq = 351
		sameEntries(t, "after put and touch", mirrorAll(t, s, "in", at(3*time.Minute), "k0000", "k0350", "k0699"),
			[]store.MirrorEntry{want0, want350, want699})
	})

	t.Run("TouchDelete", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inTrigger(t, s, "in", at(time.Minute), func(tx store.TriggerTx) {
			if err := tx.MirrorPut([]store.MirrorEntry{mirrorEntry("a", "fa", `{"v": 1}`), mirrorEntry("b", "fb", ""), mirrorEntry("c", "fc", "")}); err != nil {
				t.Fatalf("MirrorPut: %v", err)
			}
		})
		inTrigger(t, s, "in", at(2*time.Minute), func(tx store.TriggerTx) {
			if got := tx.Trigger().Mirrored; got != 3 {
				t.Errorf("Trigger().Mirrored = %d, want 3", got)
			}
			// Missing keys are ignored by both: touch does not create them.
			if err := tx.MirrorTouch([]string{"a", "missing"}); err != nil {
				t.Fatalf("MirrorTouch: %v", err)
			}
			if err := tx.MirrorDelete([]string{"b", "also-missing"}); err != nil {
				t.Fatalf("MirrorDelete: %v", err)
			}
		})
		sameEntries(t, "after touch and delete", mirrorAll(t, s, "in", at(3*time.Minute), "a", "b", "c", "missing"), []store.MirrorEntry{
			seenAt(mirrorEntry("a", "fa", `{"v": 1}`), at(2*time.Minute)),
			seenAt(mirrorEntry("c", "fc", ""), at(time.Minute)),
		})
		if got := getTrigger(t, s, "in").Mirrored; got != 2 {
			t.Errorf("Mirrored after delete = %d, want 2", got)
		}
	})

	t.Run("EmptyLists", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		inTrigger(t, s, "in", at(time.Minute), func(tx store.TriggerTx) {
			if err := tx.MirrorPut([]store.MirrorEntry{mirrorEntry("a", "fa", "")}); err != nil {
				t.Fatalf("MirrorPut: %v", err)
			}
		})
		inTrigger(t, s, "in", at(2*time.Minute), func(tx store.TriggerTx) {
			for _, keys := range [][]string{nil, {}} {
				m, err := tx.MirrorGet(keys)
				if err != nil || len(m) != 0 {
					t.Errorf("MirrorGet(%#v) = %v, %v; want nothing", keys, m, err)
				}
				if err := tx.MirrorTouch(keys); err != nil {
					t.Errorf("MirrorTouch(%#v): %v", keys, err)
				}
				if err := tx.MirrorDelete(keys); err != nil {
					t.Errorf("MirrorDelete(%#v): %v", keys, err)
				}
			}
			for _, entries := range [][]store.MirrorEntry{nil, {}} {
				if err := tx.MirrorPut(entries); err != nil {
					t.Errorf("MirrorPut(%#v): %v", entries, err)
				}
			}
		})
		sameEntries(t, "after no-ops", mirrorAll(t, s, "in", at(3*time.Minute), "a"),
			[]store.MirrorEntry{seenAt(mirrorEntry("a", "fa", ""), at(time.Minute))})
	})

	t.Run("PerTrigger", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Two watchers see the same key: each has its own entry, and what
		// one does to it never touches the other's.
		for i, name := range []string{"x", "y"} {
			triggerDo(t, s, name, model.TriggerFolder, at(time.Minute), func(tx store.TriggerTx) error {
				return tx.MirrorPut([]store.MirrorEntry{mirrorEntry("same", fmt.Sprintf("f%d", i), ""), mirrorEntry("only-"+name, "f", "")})
			})
		}
		triggerDo(t, s, "y", model.TriggerFolder, at(2*time.Minute), func(tx store.TriggerTx) error {
			if err := tx.MirrorTouch([]string{"same"}); err != nil {
				return err
			}
			stale, err := tx.MirrorStale(at(time.Hour), 100)
			if err != nil {
				return err
			}
			sameEntries(t, "y's stale entries", stale, []store.MirrorEntry{seenAt(mirrorEntry("only-y", "f", ""), at(time.Minute)),
				seenAt(mirrorEntry("same", "f1", ""), at(2*time.Minute))})
			m, err := tx.MirrorGet([]string{"only-x"})
			if err != nil || len(m) != 0 {
				t.Errorf("y's MirrorGet of x's key = %v, %v; want nothing", m, err)
			}
			return tx.MirrorDelete([]string{"same", "only-x"})
		})
		sameEntries(t, "x's mirror", mirrorAll(t, s, "x", at(3*time.Minute), "same", "only-x", "only-y"), []store.MirrorEntry{
			seenAt(mirrorEntry("only-x", "f", ""), at(time.Minute)),
			seenAt(mirrorEntry("same", "f0", ""), at(time.Minute)),
		})
		if x, y := getTrigger(t, s, "x").Mirrored, getTrigger(t, s, "y").Mirrored; x != 2 || y != 1 {
			t.Errorf("Mirrored x = %d, y = %d; want 2, 1", x, y)
		}
	})
}

// testTriggerMirrorStale covers MirrorStale: strictly before, by key in
// byte order, at most limit.
func testTriggerMirrorStale(t *testing.T, open TriggerOpener) {
	t.Parallel()
	s := open(t)
	// Keys put at T0+i min, in an order that is neither key nor time order.
	keys := []string{"b", "_", "B", "a", "a/b", "A", "c", "ab"}
	want := make(map[string]store.MirrorEntry)
	for i, k := range keys {
		now := at(time.Duration(i) * time.Minute)
		e := mirrorEntry(k, "f-"+k, fmt.Sprintf(`{"i": %d}`, i))
		inTrigger(t, s, "in", now, func(tx store.TriggerTx) {
			if err := tx.MirrorPut([]store.MirrorEntry{e}); err != nil {
				t.Fatalf("MirrorPut: %v", err)
			}
		})
		want[k] = seenAt(e, now)
	}
	// staleBefore is what MirrorStale(before, limit) must return.
	staleBefore := func(before time.Time, limit int) []store.MirrorEntry {
		var out []store.MirrorEntry
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if e := want[k]; e.SeenAt.Before(before) && len(out) < limit {
				out = append(out, e)
			}
		}
		return out
	}
	for _, tc := range []struct {
		before time.Duration
		limit  int
	}{
		{0, 100},               // nothing before T0
		{time.Minute, 100},     // only the first key: strictly before
		{4 * time.Minute, 100}, // four keys, in byte order
		{time.Hour, 100},       // all
		{time.Hour, 3},         // the first three by key
		{5 * time.Minute, 1},
	} {
		inTrigger(t, s, "in", at(time.Hour), func(tx store.TriggerTx) {
			got, err := tx.MirrorStale(at(tc.before), tc.limit)
			if err != nil {
				t.Fatalf("MirrorStale: %v", err)
			}
			sameEntries(t, fmt.Sprintf("MirrorStale(T0+%v, %d)", tc.before, tc.limit), got, staleBefore(at(tc.before), tc.limit))
		})
	}
	// The way the service uses it: delete page after page until none is
	// left.
	inTrigger(t, s, "in", at(2*time.Hour), func(tx store.TriggerTx) {
		var order []string
		for range len(keys) {
			page, err := tx.MirrorStale(at(time.Hour), 3)
			if err != nil {
				t.Fatalf("MirrorStale: %v", err)
			}
			if len(page) == 0 {
				break
			}
			var del []string
			for _, e := range page {
				del = append(del, e.Key)
			}
			order = append(order, del...)
			if err := tx.MirrorDelete(del); err != nil {
				t.Fatalf("MirrorDelete: %v", err)
			}
		}
		if want := []string{"A", "B", "_", "a", "a/b", "ab", "b", "c"}; !slices.Equal(order, want) {
			t.Errorf("stale keys deleted in order %q, want %q", order, want)
		}
	})
	if got := getTrigger(t, s, "in").Mirrored; got != 0 {
		t.Errorf("Mirrored after deleting every stale entry = %d, want 0", got)
	}
}

// testTriggerMirrorLarge covers key lists longer than any engine's bind
// parameter comfort: 2,000 keys in one call of each method.
func testTriggerMirrorLarge(t *testing.T, open TriggerOpener) {
	t.Parallel()
	s := open(t)
	const n = 2000
	keys := make([]string, n)
	entries := make([]store.MirrorEntry, n)
	for i := range n {
		keys[i] = fmt.Sprintf("dir/file-%05d.wav", i)
		entries[i] = mirrorEntry(keys[i], fmt.Sprintf("fp-%d", i), fmt.Sprintf(`{"i": %d}`, i))
	}
	inTrigger(t, s, "big", at(time.Minute), func(tx store.TriggerTx) {
		if err := tx.MirrorPut(entries); err != nil {
			t.Fatalf("MirrorPut of %d: %v", n, err)
		}
	})
	inTrigger(t, s, "big", at(2*time.Minute), func(tx store.TriggerTx) {
		if got := tx.Trigger().Mirrored; got != n {
			t.Errorf("Trigger().Mirrored = %d, want %d", got, n)
		}
		m, err := tx.MirrorGet(append(slices.Clone(keys), "missing-1", "missing-2"))
		if err != nil {
			t.Fatalf("MirrorGet of %d: %v", n+2, err)
		}
		if len(m) != n {
			t.Fatalf("MirrorGet of %d keys returned %d entries, want %d", n+2, len(m), n)
		}
		for i, k := range keys {
			if e, ok := m[k]; !ok || e.Fingerprint != entries[i].Fingerprint {
				t.Fatalf("MirrorGet[%s] = %+v, %v", k, e, ok)
			}
		}
		if err := tx.MirrorTouch(keys); err != nil {
			t.Fatalf("MirrorTouch of %d: %v", n, err)
		}
		stale, err := tx.MirrorStale(at(2*time.Minute), n)
		if err != nil || len(stale) != 0 {
			t.Fatalf("MirrorStale after touching every key: %d entries, %v; want none", len(stale), err)
		}
	})
	inTrigger(t, s, "big", at(3*time.Minute), func(tx store.TriggerTx) {
		if err := tx.MirrorDelete(keys[:n-1]); err != nil {
			t.Fatalf("MirrorDelete of %d: %v", n-1, err)
		}
	})
	sameEntries(t, "the one entry left", mirrorAll(t, s, "big", at(4*time.Minute), keys...),
		[]store.MirrorEntry{seenAt(entries[n-1], at(2*time.Minute))})
}
