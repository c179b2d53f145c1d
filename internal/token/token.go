// Package token makes and checks the API's bearer tokens: a secret of 256
// random bits, shown once, stored only as its SHA-256.
package token

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"regexp"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// Prefix starts every secret, so a leaked one is recognisable (scanners,
// logs).
const Prefix = "dpe_"

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckName refuses a name that is empty, longer than 64 characters or
// holds anything but letters, digits, '.', '_' and '-'.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return model.Invalid("name", "want 1 to 64 letters, digits, '.', '_' or '-' starting with a letter or digit, got %q", name)
	}
	return nil
}

// CheckRole refuses an unknown role.
func CheckRole(r model.Role) error {
	if !r.Valid() {
		return model.Invalid("role", "want one of %v, got %q", model.Roles, r)
	}
	return nil
}

// NewSecret returns a fresh secret: Prefix and 32 bytes from crypto/rand,
// base64url.
func NewSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (Go 1.24+)
	return Prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// Hash is what the store keeps of a secret.
func Hash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// Create makes a token of role named name in st and returns its secret,
// which is not kept anywhere.
func Create(ctx context.Context, st store.TokenStore, name string, role model.Role, now time.Time) (model.Token, string, error) {
	if err := CheckName(name); err != nil {
		return model.Token{}, "", err
	}
	if err := CheckRole(role); err != nil {
		return model.Token{}, "", err
	}
	secret := NewSecret()
	t := model.Token{Name: name, Role: role, Hash: Hash(secret), Created: now.UTC().Truncate(time.Millisecond)}
	if err := st.TokenCreate(ctx, t); err != nil {
		return model.Token{}, "", fmt.Errorf("create token %s: %w", name, err)
	}
	return t, secret, nil
}
