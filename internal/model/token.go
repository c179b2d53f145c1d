package model

import "time"

// Role is what a bearer token may do (DESIGN §7).
type Role string

// The roles. Admin may do everything; operator starts, cancels and
// prioritises work and reads everything; viewer only reads; processor
// claims and reports jobs and drives workflow instances; trigger fires and
// observes triggers.
const (
	RoleAdmin     Role = "admin"
	RoleOperator  Role = "operator"
	RoleViewer    Role = "viewer"
	RoleProcessor Role = "processor"
	RoleTrigger   Role = "trigger"
)

// Roles lists every role.
var Roles = []Role{RoleAdmin, RoleOperator, RoleViewer, RoleProcessor, RoleTrigger}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// Token is a stored bearer token. Only the SHA-256 of the secret is kept.
type Token struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
	Hash []byte `json:"-"`
	// Triggers, for a trigger token, are the path.Match patterns of the
	// trigger names it may fire, observe and read (none: every trigger).
	Triggers []string `json:"triggers,omitempty"`
	// Types, for a processor token, are the path.Match patterns of the
	// job types it may claim and report (none: every type).
	Types   []string  `json:"types,omitempty"`
	Created time.Time `json:"created"`
	// Revoked is set when the token was revoked (zero: live).
	Revoked time.Time `json:"revoked,omitzero"`
}

// Scope is the name patterns that narrow the token's role: Triggers of a
// trigger token, Types of a processor token (nil for other roles). The
// store keeps them in one column whatever the role.
func (t Token) Scope() []string {
	switch t.Role {
	case RoleTrigger:
		return t.Triggers
	case RoleProcessor:
		return t.Types
	}
	return nil
}

// SetScope sets the patterns Scope returns, by t.Role (set it first).
func (t *Token) SetScope(patterns []string) {
	switch t.Role {
	case RoleTrigger:
		t.Triggers = patterns
	case RoleProcessor:
		t.Types = patterns
	}
}
