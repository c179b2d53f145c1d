package model

import "time"

// AuditEntry records one mutating API call: who made it, what it asked
// and how it was answered. It never holds the request's body (bodies may
// carry secrets: a token's name is kept, its secret never; a job's params
// may hold credentials), only what the route and its path name.
type AuditEntry struct {
	// ID orders every entry of the database; lists are newest first and
	// page by it.
	ID int64     `json:"id"`
	At time.Time `json:"at"`
	// Principal is the token's name, "anonymous" for a call without a
	// valid token, "-" when the server requires none.
	Principal string `json:"principal"`
	Role      Role   `json:"role,omitempty"`
	Method    string `json:"method"`
	// Route is the route's pattern, "POST /v1/jobs/{id}/cancel".
	Route string `json:"route"`
	// Target holds the route's path values ("id=42", "name=ingest") and,
	// for a call that created something, where it is
	// ("created=/v1/jobs/43").
	Target    string `json:"target,omitempty"`
	Status    int    `json:"status"`
	Remote    string `json:"remote,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// Outcome is a short word or title: "ok", "forbidden", "conflict".
	Outcome string `json:"outcome,omitempty"`
}

// AuditFilter selects audit entries, newest first. Zero fields do not
// filter.
type AuditFilter struct {
	Since time.Time // at or after
	Until time.Time // before
	// Principal and Route match exactly.
	Principal string
	Route     string
	// Before is the paging cursor: only entries with a smaller id.
	Before int64
	Limit  int
}
