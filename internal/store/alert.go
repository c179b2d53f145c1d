package store

import (
	"context"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// AlertStore keeps the alerts the server evaluates and notifies (package
// alert), and answers the one question about workflows they need. Both
// engines implement it; the server type-asserts it.
type AlertStore interface {
	// AlertPut stores a, inserting it or replacing the alert of its Key.
	AlertPut(ctx context.Context, a model.Alert) error
	// AlertList returns the alerts the filter selects, most recently
	// updated first.
	AlertList(ctx context.Context, f model.AlertFilter) ([]model.Alert, error)
	// AlertPurge deletes alerts resolved (or fired failures) with no
	// notification owed, last updated before the time; it returns how
	// many.
	AlertPurge(ctx context.Context, before time.Time) (int, error)
	// InstanceFailedSince returns up to limit instances in state failed
	// that finished at or after since, oldest finish first (then by id).
	InstanceFailedSince(ctx context.Context, since time.Time, limit int) ([]model.Instance, error)
}

// AlertOpenNotify is the SQL condition of an alert that is "open" for
// AlertFilter.Open (both engines use it).
const AlertOpenNotify = `(state <> 'resolved' OR notify <> '')`
