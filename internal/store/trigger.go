package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// MirrorEntry is one item of a watcher's mirror: what the core DB last
// saw of a file or row.
type MirrorEntry struct {
	Key         string          `json:"key"`
	Fingerprint string          `json:"fingerprint"`
	Data        json.RawMessage `json:"data,omitempty"`
	SeenAt      time.Time       `json:"seen_at"`
	// Seq is the trigger's change number of the observation that last
	// wrote this entry (MirrorPut stores it; touches leave it).
	Seq int64 `json:"seq"`
}

// TriggerStore holds trigger state, watcher mirrors and trigger records.
// The trigger logic (diffing, mapping events to instances) lives in the
// server's trigger service and runs inside TriggerDo, so every event's
// instance is created in the same transaction as the state change that
// consumed it.
type TriggerStore interface {
	// TriggerDo runs fn in one transaction that holds the trigger's row
	// lock (the row is created, with kind, on first use), so concurrent
	// copies of a trigger are serialized. fn's error rolls everything back;
	// so does ErrRollback (a dry run), which TriggerDo then returns as nil.
	TriggerDo(ctx context.Context, name, kind string, now time.Time, fn func(tx TriggerTx) error) error
	// TriggerGet returns one trigger (model.ErrNotFound before first use).
	TriggerGet(ctx context.Context, name string) (model.Trigger, error)
	// TriggerList returns every trigger by name.
	TriggerList(ctx context.Context) ([]model.Trigger, error)
	// TriggerRecords returns the newest records of a trigger ("" = all).
	TriggerRecords(ctx context.Context, name string, limit int) ([]model.TriggerRecord, error)
	// TriggerSetError records (or clears, with "") a trigger's error.
	TriggerSetError(ctx context.Context, name, kind, msg string, now time.Time) error
}

// ErrRollback makes TriggerDo roll back without an error (dry runs).
var ErrRollback = rollback{}

type rollback struct{}

func (rollback) Error() string { return "rollback requested" }

// TriggerTx is the transaction of TriggerDo.
type TriggerTx interface {
	// Trigger is the trigger row as locked (Mirrored counted).
	Trigger() model.Trigger
	// SetState replaces the trigger's state.
	SetState(state json.RawMessage) error
	// MirrorGet returns the mirror entries of the keys that exist.
	MirrorGet(keys []string) (map[string]MirrorEntry, error)
	// MirrorPut upserts entries (SeenAt = now, Seq as given).
	MirrorPut(entries []MirrorEntry) error
	// MirrorTouch sets SeenAt = now on existing entries of the keys.
	MirrorTouch(keys []string) error
	// MirrorStale returns up to limit entries not seen since the time.
	MirrorStale(before time.Time, limit int) ([]MirrorEntry, error)
	// MirrorDelete removes entries.
	MirrorDelete(keys []string) error
	// InstanceCreate creates an instance exactly like
	// InstanceStore.InstanceCreate, inside this transaction; spec.Trigger
	// is recorded on it.
	InstanceCreate(spec model.InstanceSpec) (model.Instance, bool, error)
	// ActiveInstances counts the non-final instances this trigger started.
	ActiveInstances() (int, error)
	// Record stores a trigger record unless one with the same trigger, key
	// and action exists; it reports whether it was stored. LastEventAt
	// moves to now when stored.
	Record(r model.TriggerRecord) (bool, error)
}
