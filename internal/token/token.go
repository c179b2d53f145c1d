// Package token makes and checks the API's bearer tokens: a secret of 256
// random bits, shown once, stored only as its SHA-256.
package token

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/wire"
)

// Prefix starts every secret, so a leaked one is recognisable (scanners,
// logs).
const Prefix = "dpe_"

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckName refuses a name that is empty, longer than 64 characters or
// holds anything but letters, digits, '.', '_' and '-'.
func CheckName(name string) error {
	if err := wire.CheckName("name", name); err != nil {
		return err
	}
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

// CheckTriggers refuses trigger patterns on a role other than trigger,
// and a pattern that is empty, holds a comma or is not path.Match syntax.
func CheckTriggers(role model.Role, patterns []string) error {
	if len(patterns) > 0 && role != model.RoleTrigger {
		return model.Invalid("triggers", "only a trigger token takes trigger patterns")
	}
	return checkPatterns("triggers", "a name", patterns)
}

// CheckTypes refuses job type patterns on a role other than processor,
// and a pattern that is empty, holds a comma or is not path.Match syntax.
func CheckTypes(role model.Role, patterns []string) error {
	if len(patterns) > 0 && role != model.RoleProcessor {
		return model.Invalid("types", "only a processor token takes job type patterns")
	}
	return checkPatterns("types", "a job type", patterns)
}

// checkPatterns checks the patterns of a token's scope (kept
// comma-separated, so without commas).
func checkPatterns(field, what string, patterns []string) error {
	if len(patterns) > 100 {
		return model.Invalid(field, "at most 100 patterns")
	}
	for i, p := range patterns {
		if _, err := path.Match(p, ""); p == "" || len(p) > 200 || strings.Contains(p, ",") || err != nil {
			return model.Invalid(fmt.Sprintf("%s[%d]", field, i), "want %s or a glob pattern (* ? [...]) without commas, got %q", what, p)
		}
	}
	return nil
}

// MayServe reports whether a processor token with patterns may claim and
// report jobs of the type: no patterns, every type.
func MayServe(patterns []string, jobType string) bool {
	return MayUseTrigger(patterns, jobType)
}

// MayUseTrigger reports whether a trigger token with patterns may fire,
// observe and read the trigger name: no patterns, every trigger.
func MayUseTrigger(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// Create makes the token t (its Name, Role, Triggers and Types) in st and
// returns it with its secret, which is not kept anywhere.
func Create(ctx context.Context, st store.TokenStore, t model.Token, now time.Time) (model.Token, string, error) {
	if err := CheckName(t.Name); err != nil {
		return model.Token{}, "", err
	}
	if err := CheckRole(t.Role); err != nil {
		return model.Token{}, "", err
	}
	if err := CheckTriggers(t.Role, t.Triggers); err != nil {
		return model.Token{}, "", err
	}
	if err := CheckTypes(t.Role, t.Types); err != nil {
		return model.Token{}, "", err
	}
	secret := NewSecret()
	t.Hash, t.Created, t.Revoked = Hash(secret), now.UTC().Truncate(time.Millisecond), time.Time{}
	if err := st.TokenCreate(ctx, t); err != nil {
		return model.Token{}, "", fmt.Errorf("create token %s: %w", t.Name, err)
	}
	return t, secret, nil
}
