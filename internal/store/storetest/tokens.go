package storetest

import (
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// TokenOpener returns a fresh, empty, migrated store.TokenStore whose
// cleanup is registered on t.
type TokenOpener func(t *testing.T) store.TokenStore

// RunTokens runs the conformance suite of store.TokenStore: a created
// token is found by its hash until revoked, names are never reused,
// revoking twice or an unknown name is model.ErrNotFound, and the list
// keeps revoked tokens with their revocation time.
func RunTokens(t *testing.T, open TokenOpener) {
	t.Helper()
	ctx := t.Context()
	s := open(t)
	hash := func(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }
	if n, err := s.TokenCount(ctx); err != nil || n != 0 {
		t.Fatalf("TokenCount of an empty store = %d, %v; want 0", n, err)
	}
	for i, tok := range []model.Token{
		{Name: "ops", Role: model.RoleOperator, Hash: hash("a"), Created: T0},
		{Name: "farm-1", Role: model.RoleProcessor, Types: []string{"audio.*", "util.copy"}, Hash: hash("b"), Created: T0.Add(time.Second)},
		{Name: "sched", Role: model.RoleTrigger, Triggers: []string{"nightly-*", "inbox"}, Hash: hash("e"), Created: T0},
	} {
		if err := s.TokenCreate(ctx, tok); err != nil {
			t.Fatalf("TokenCreate #%d: %v", i, err)
		}
	}
	got, err := s.TokenByHash(ctx, hash("a"))
	if err != nil || got.Name != "ops" || got.Role != model.RoleOperator || !got.Created.Equal(T0) {
		t.Fatalf("TokenByHash(a) = %+v, %v; want ops/operator at T0", got, err)
	}
	if got, err := s.TokenByHash(ctx, hash("e")); err != nil || !slices.Equal(got.Triggers, []string{"nightly-*", "inbox"}) {
		t.Fatalf("TokenByHash(e) = %+v, %v; want its trigger patterns", got, err)
	}
	// The one patterns column holds a processor token's job types too.
	if got, err := s.TokenByHash(ctx, hash("b")); err != nil || !slices.Equal(got.Types, []string{"audio.*", "util.copy"}) || got.Triggers != nil {
		t.Fatalf("TokenByHash(b) = %+v, %v; want its job type patterns", got, err)
	}
	if got.Triggers != nil {
		t.Fatalf("a token without patterns reads back %q", got.Triggers)
	}
	if _, err := s.TokenByHash(ctx, hash("zzz")); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("TokenByHash(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.TokenCreate(ctx, model.Token{Name: "ops", Role: model.RoleViewer, Hash: hash("c"), Created: T0}); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("TokenCreate of a used name = %v, want ErrConflict", err)
	}
	if err := s.TokenRevoke(ctx, "ops", T0.Add(time.Minute)); err != nil {
		t.Fatalf("TokenRevoke: %v", err)
	}
	if err := s.TokenRevoke(ctx, "ops", T0.Add(2*time.Minute)); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("TokenRevoke twice = %v, want ErrNotFound", err)
	}
	if err := s.TokenRevoke(ctx, "nobody", T0); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("TokenRevoke(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := s.TokenByHash(ctx, hash("a")); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("TokenByHash of a revoked token = %v, want ErrNotFound", err)
	}
	if err := s.TokenCreate(ctx, model.Token{Name: "ops", Role: model.RoleViewer, Hash: hash("d"), Created: T0}); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("TokenCreate reusing a revoked name = %v, want ErrConflict", err)
	}
	list, err := s.TokenList(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("TokenList = %+v, %v; want 3 tokens", list, err)
	}
	if list[0].Name != "farm-1" || len(list[0].Types) != 2 || !list[0].Revoked.IsZero() || list[1].Name != "ops" || !list[1].Revoked.Equal(T0.Add(time.Minute)) ||
		list[2].Name != "sched" || len(list[2].Triggers) != 2 {
		t.Fatalf("TokenList = %+v: want farm-1 live, ops revoked at T0+1m, sched with 2 patterns", list)
	}
	if n, err := s.TokenCount(ctx); err != nil || n != 2 {
		t.Fatalf("TokenCount = %d, %v; want 2", n, err)
	}
}
