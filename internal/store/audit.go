package store

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/dpe-engine/dpe/internal/model"
)

// Bounds of audit entries: at most MaxAuditList per AuditList, and every
// text field cut to MaxAuditField bytes (a long path value or remote
// address cannot grow the table without bound).
const (
	MaxAuditList  = 1000
	MaxAuditField = 256
)

// AuditStore holds the audit trail of mutating API calls. Entries are
// never changed, only appended and, past the retention, purged.
type AuditStore interface {
	// AuditAppend stores entries in one transaction, in order, each
	// getting the next id (ID on input is ignored). Fields are cut by
	// NormalizeAudit.
	AuditAppend(ctx context.Context, entries []model.AuditEntry) error
	// AuditList returns the entries f selects, newest (highest id) first,
	// at most AuditLimit(f.Limit), with Total counting every match of the
	// filter regardless of paging and the cursor. Next is left empty.
	AuditList(ctx context.Context, f model.AuditFilter) (model.Page[model.AuditEntry], error)
	// AuditPurge deletes at most limit of the oldest entries recorded
	// before the time, returning how many: a bounded transaction, repeated
	// by the caller while it returns limit.
	AuditPurge(ctx context.Context, before time.Time, limit int) (int, error)
}

// AuditLimit returns the number of entries an AuditList with limit n
// returns at most.
func AuditLimit(n int) int {
	if n <= 0 || n > MaxAuditList {
		return MaxAuditList
	}
	return n
}

// NormalizeAudit returns e as it is stored: text fields cut to
// MaxAuditField bytes at a character boundary, the time in UTC.
func NormalizeAudit(e model.AuditEntry) model.AuditEntry {
	e.At = e.At.UTC()
	for _, s := range []*string{&e.Principal, &e.Method, &e.Route, &e.Target, &e.Remote, &e.RequestID, &e.Outcome} {
		*s = cutText(*s, MaxAuditField)
	}
	e.Role = model.Role(cutText(string(e.Role), MaxAuditField))
	return e
}

// cutText cuts s to at most n bytes at a character boundary.
func cutText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
