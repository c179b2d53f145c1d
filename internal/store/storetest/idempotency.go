package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// sameResponse fails unless got and want are the same answer.
func sameResponse(t *testing.T, what string, got, want store.Response) {
	t.Helper()
	if got.Fingerprint != want.Fingerprint || got.Status != want.Status || canonJSON(got.Body) != canonJSON(want.Body) {
		t.Errorf("%s = {%s %d %s}, want {%s %d %s}", what, got.Fingerprint, got.Status, got.Body, want.Fingerprint, want.Status, want.Body)
	}
}

// testIdempotency covers IdempotencyGet, Put and Purge.
func testIdempotency(t *testing.T, open Opener) {
	t.Run("PutIfAbsent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		_, err := s.IdempotencyGet(t.Context(), "k1")
		wantErr(t, "get of an unknown key", err, model.ErrNotFound)

		first := store.Response{Fingerprint: "fp-1", Status: 201, Body: json.RawMessage(`{"jobs": [{"id": 1}]}`)}
		got, err := s.IdempotencyPut(t.Context(), "k1", first, T0)
		if err != nil {
			t.Fatalf("IdempotencyPut: %v", err)
		}
		sameResponse(t, "first put", got, first)

		second := store.Response{Fingerprint: "fp-2", Status: 500, Body: json.RawMessage(`{}`)}
		got, err = s.IdempotencyPut(t.Context(), "k1", second, at(time.Second))
		if err != nil {
			t.Fatalf("second IdempotencyPut: %v", err)
		}
		sameResponse(t, "second put", got, first)
		got, err = s.IdempotencyGet(t.Context(), "k1")
		if err != nil {
			t.Fatalf("IdempotencyGet: %v", err)
		}
		sameResponse(t, "get", got, first)
	})

	t.Run("Purge", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		r := store.Response{Fingerprint: "fp", Status: 200, Body: json.RawMessage(`{"ok":true}`)}
		for key, now := range map[string]time.Time{"old": T0, "new": at(time.Hour)} {
			if _, err := s.IdempotencyPut(t.Context(), key, r, now); err != nil {
				t.Fatalf("IdempotencyPut(%s): %v", key, err)
			}
		}
		n, err := s.IdempotencyPurge(t.Context(), at(30*time.Minute))
		if err != nil || n != 1 {
			t.Fatalf("IdempotencyPurge = %d, %v; want 1", n, err)
		}
		_, err = s.IdempotencyGet(t.Context(), "old")
		wantErr(t, "get of a purged key", err, model.ErrNotFound)
		if _, err := s.IdempotencyGet(t.Context(), "new"); err != nil {
			t.Fatalf("get of a kept key: %v", err)
		}
	})

	t.Run("ConcurrentPut", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		const n = 10
		var (
			wg   sync.WaitGroup
			got  = make([]store.Response, n)
			errs = make([]error, n)
		)
		for i := range n {
			wg.Go(func() {
				r := store.Response{Fingerprint: fmt.Sprintf("fp-%d", i), Status: 200, Body: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
				got[i], errs[i] = s.IdempotencyPut(t.Context(), "race", r, T0)
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("put %d: %v", i, errs[i])
			}
			sameResponse(t, fmt.Sprintf("put %d", i), got[i], got[0])
		}
		stored, err := s.IdempotencyGet(t.Context(), "race")
		if err != nil {
			t.Fatalf("IdempotencyGet: %v", err)
		}
		sameResponse(t, "stored", stored, got[0])
	})
}
