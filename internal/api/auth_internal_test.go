package api

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// countStore answers TokenCount with n and err; the other methods are not
// used by enabled.
type countStore struct {
	store.TokenStore
	n     int
	err   error
	calls int
}

func (c *countStore) TokenCount(context.Context) (int, error) {
	c.calls++
	return c.n, c.err
}

// TestAuthEnabled: whether tokens are needed follows the store, asked at
// most once per tokenCacheTTL; an error before any answer is reported
// (503), after one the last answer stands; once on, auth stays on.
func TestAuthEnabled(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	st := &countStore{err: model.ErrUnavailable}
	a := newAuthenticator("", st, func() time.Time { return now })
	step := func(want bool, wantErr bool) {
		t.Helper()
		on, err := a.enabled(ctx)
		if on != want || (err != nil) != wantErr || (err != nil && !errors.Is(err, model.ErrUnavailable)) {
			t.Fatalf("enabled = %v, %v; want %v, error %v", on, err, want, wantErr)
		}
	}
	step(false, true) // no answer yet: 503
	st.err = nil
	step(false, false)
	step(false, false)
	if st.calls != 2 {
		t.Fatalf("%d store calls within the TTL, want 2", st.calls)
	}
	now = now.Add(tokenCacheTTL)
	st.err = model.ErrUnavailable
	step(false, false) // outage: the last answer stands
	st.err, st.n = nil, 1
	step(true, false)
	st.n, st.err = 0, model.ErrUnavailable
	now = now.Add(time.Hour)
	step(true, false) // on for good
	if on, err := newAuthenticator("shared", nil, time.Now).enabled(ctx); !on || err != nil {
		t.Fatalf("shared token: enabled = %v, %v; want on", on, err)
	}
}
