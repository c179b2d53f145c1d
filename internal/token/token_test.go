package token

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/model"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"root", true},
		{"farm-1.berlin_a", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"-lead", false},
		{"a b", false},
		{"a/b", false},
		{"ä", false},
	}
	for _, tt := range tests {
		err := CheckName(tt.name)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, model.ErrInvalid)) {
			t.Errorf("CheckName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
	if err := CheckRole("root"); !errors.Is(err, model.ErrInvalid) {
		t.Errorf("CheckRole(root) = %v, want ErrInvalid", err)
	}
	for _, r := range model.Roles {
		if err := CheckRole(r); err != nil {
			t.Errorf("CheckRole(%s) = %v", r, err)
		}
	}
}

// TestNewSecret: secrets carry the prefix and 256 bits, differ, and hash
// to 32 bytes that differ too.
func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		s := NewSecret()
		if !strings.HasPrefix(s, Prefix) || len(s) != len(Prefix)+43 || seen[s] {
			t.Fatalf("secret %q: want %s + 43 base64url characters, never repeated", s, Prefix)
		}
		seen[s] = true
	}
	a, b := Hash("x"), Hash("y")
	if len(a) != 32 || bytes.Equal(a, b) || !bytes.Equal(a, Hash("x")) {
		t.Fatalf("Hash: %x %x", a, b)
	}
}

func TestTriggerPatterns(t *testing.T) {
	if err := CheckTriggers(model.RoleTrigger, []string{"nightly-*", "inbox"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{""}, {"a,b"}, {"[a"}} {
		if err := CheckTriggers(model.RoleTrigger, bad); !errors.Is(err, model.ErrInvalid) {
			t.Errorf("CheckTriggers(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := CheckTriggers(model.RoleOperator, []string{"a"}); !errors.Is(err, model.ErrInvalid) {
		t.Errorf("patterns on an operator: %v, want ErrInvalid", err)
	}
	tests := []struct {
		pats []string
		name string
		want bool
	}{
		{nil, "anything", true},
		{[]string{"nightly-*"}, "nightly-purge", true},
		{[]string{"nightly-*"}, "inbox", false},
		{[]string{"nightly-*", "inbox"}, "inbox", true},
		{[]string{"inbox"}, "inbox2", false},
	}
	for _, tt := range tests {
		if got := MayUseTrigger(tt.pats, tt.name); got != tt.want {
			t.Errorf("MayUseTrigger(%q, %q) = %v, want %v", tt.pats, tt.name, got, tt.want)
		}
	}
}

func TestTypePatterns(t *testing.T) {
	if err := CheckTypes(model.RoleProcessor, []string{"audio.*", "util.copy"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{{""}, {"a,b"}, {"[a"}} {
		if err := CheckTypes(model.RoleProcessor, bad); !errors.Is(err, model.ErrInvalid) {
			t.Errorf("CheckTypes(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := CheckTypes(model.RoleTrigger, []string{"a"}); !errors.Is(err, model.ErrInvalid) {
		t.Errorf("types on a trigger token: %v, want ErrInvalid", err)
	}
	tests := []struct {
		pats []string
		typ  string
		want bool
	}{
		{nil, "exec", true},
		{[]string{"audio.*", "util.copy"}, "audio.transcode", true},
		{[]string{"audio.*", "util.copy"}, "util.copy", true},
		{[]string{"audio.*", "util.copy"}, "util.delete", false},
		{[]string{"audio.*"}, "audio", false},
	}
	for _, tc := range tests {
		if got := MayServe(tc.pats, tc.typ); got != tc.want {
			t.Errorf("MayServe(%q, %q) = %v, want %v", tc.pats, tc.typ, got, tc.want)
		}
	}
}
