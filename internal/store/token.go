package store

import (
	"context"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// TokenStore holds the API's bearer tokens, by name, hashed.
type TokenStore interface {
	// TokenCreate stores t. A token of that name, live or revoked:
	// model.ErrConflict (names are never reused, so an audit trail naming
	// one stays unambiguous).
	TokenCreate(ctx context.Context, t model.Token) error
	// TokenByHash returns the live token whose hash is hash, or
	// model.ErrNotFound (revoked tokens are not found).
	TokenByHash(ctx context.Context, hash []byte) (model.Token, error)
	// TokenList returns every token, revoked ones included, by name.
	TokenList(ctx context.Context) ([]model.Token, error)
	// TokenRevoke marks the live token name revoked at now; no live token
	// of that name: model.ErrNotFound.
	TokenRevoke(ctx context.Context, name string, now time.Time) error
	// TokenCount returns the number of live tokens.
	TokenCount(ctx context.Context) (int, error)
}
