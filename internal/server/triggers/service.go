// Package triggers is the server side of schedules, folder watchers and
// table watchers. Trigger processes only observe (fire times, files, rows);
// this service turns their observations into instances inside one core-DB
// transaction per request, together with the state change that consumes
// the event (the schedule's last fire time, the watcher's mirror), under
// the trigger's row lock. Instance names are deterministic per event, so
// whatever runs, dies or overlaps, one event starts one instance.
package triggers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/metrics"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server/workflows"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/template"
	"github.com/dpe-engine/dpe/internal/wire"
)

// Limits of one request.
const (
	MaxFires    = wire.MaxFires
	MaxItems    = wire.MaxItems
	staleBatch  = 5000
	passMaxAge  = time.Hour
	recordLimit = 1000
)

// Config configures a Service.
type Config struct {
	Store store.TriggerStore
	Flows *workflows.Service
	Clock clock.Clock
	Log   *slog.Logger
	// Metrics counts trigger events (nil: none).
	Metrics *metrics.Triggers
}

// Service is the trigger service.
type Service struct {
	store store.TriggerStore
	flows *workflows.Service
	clock clock.Clock
	log   *slog.Logger

	metrics *metrics.Triggers
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{store: cfg.Store, flows: cfg.Flows, clock: cfg.Clock, log: cfg.Log, metrics: cfg.Metrics}
}

// Get returns one trigger.
func (s *Service) Get(ctx context.Context, name string) (model.Trigger, error) {
	t, err := s.store.TriggerGet(ctx, name)
	if err != nil {
		return t, fmt.Errorf("trigger %s: %w", name, err)
	}
	s.decorate(&t)
	return t, nil
}

// List returns every trigger.
func (s *Service) List(ctx context.Context) ([]model.Trigger, error) {
	list, err := s.store.TriggerList(ctx)
	if err != nil {
		return nil, fmt.Errorf("list triggers: %w", err)
	}
	if list == nil {
		list = []model.Trigger{}
	}
	for i := range list {
		s.decorate(&list[i])
	}
	return list, nil
}

// Records returns a trigger's newest records.
func (s *Service) Records(ctx context.Context, name string, limit int) ([]model.TriggerRecord, error) {
	if limit <= 0 || limit > recordLimit {
		limit = 100
	}
	list, err := s.store.TriggerRecords(ctx, name, limit)
	if err != nil {
		return nil, fmt.Errorf("records of %s: %w", name, err)
	}
	if list == nil {
		list = []model.TriggerRecord{}
	}
	return list, nil
}

// SetError records or clears a trigger's error state.
func (s *Service) SetError(ctx context.Context, name, kind, msg string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := checkKind(kind); err != nil {
		return err
	}
	if len(msg) > 2000 {
		msg = msg[:2000]
	}
	if err := s.store.TriggerSetError(ctx, name, kind, msg, s.clock.Now()); err != nil {
		return fmt.Errorf("trigger %s: %w", name, err)
	}
	return nil
}

func checkName(name string) error {
	if name == "" {
		return model.Invalid("name", "a trigger name is required")
	}
	return wire.CheckName("name", name)
}

func checkKind(kind string) error {
	switch kind {
	case model.TriggerSchedule, model.TriggerFolder, model.TriggerTable:
		return nil
	}
	return model.Invalid("kind", "want schedule, folder or table, got %q", kind)
}

// prepared is a start ready to create, or the reason it cannot be.
type prepared struct {
	spec   model.InstanceSpec
	failed string
}

// prepare evaluates a start's args against its data and validates it
// against its template. A bad start is not an error of the request: it is
// recorded as failed, so one bad file does not block the others.
func (s *Service) prepare(ctx context.Context, trigger string, spec model.InstanceSpec, args template.Value, env template.Env) prepared {
	a, err := args.Eval(env)
	if err != nil {
		return prepared{failed: fmt.Sprintf("args: %v", err)}
	}
	if a == nil {
		a = map[string]any{}
	}
	if spec.Args, err = json.Marshal(a); err != nil {
		return prepared{failed: fmt.Sprintf("args: %v", err)}
	}
	spec, err = s.flows.Prepare(ctx, spec, "")
	if err != nil {
		if errors.Is(err, model.ErrInvalid) {
			return prepared{failed: err.Error()}
		}
		return prepared{failed: "unavailable: " + err.Error()}
	}
	spec.Trigger = trigger
	return prepared{spec: spec}
}

// create makes the instance of a prepared start inside the trigger's
// transaction and records the outcome.
func create(tx store.TriggerTx, rec model.TriggerRecord, p prepared) (model.TriggerRecord, bool, error) {
	if pausedAt(tx.Trigger().State) != nil { // one place: nothing a paused trigger sees starts
		rec.Action, rec.Reason = model.RecordSkipped, pausedReason
		_, err := tx.Record(rec)
		return rec, false, err
	}
	if p.failed != "" {
		rec.Action, rec.Reason = model.RecordFailed, p.failed
		_, err := tx.Record(rec)
		return rec, false, err
	}
	inst, existing, err := tx.InstanceCreate(p.spec)
	if errors.Is(err, model.ErrConflict) {
		// Concurrency policy skip: one with the same key runs.
		rec.Action, rec.Reason = model.RecordSkipped, "concurrency key busy: "+p.spec.ConcurrencyKey
		_, err = tx.Record(rec)
		return rec, false, err
	}
	if err != nil {
		return rec, false, err
	}
	rec.InstanceID = inst.ID
	rec.Action = model.RecordStarted
	if existing {
		rec.Action = model.RecordExisting
	}
	if _, err := tx.Record(rec); err != nil {
		return rec, false, err
	}
	return rec, !existing, nil
}

// state is a trigger's state object.
type state map[string]json.RawMessage

func readState(b json.RawMessage) state {
	st := state{}
	if len(b) > 0 {
		_ = json.Unmarshal(b, &st)
	}
	return st
}

// serverKey reports whether a key of a trigger's state is the server's own,
// which a watcher's page never sets: a pass's start, the baseline mark,
// the mirror's change number, the pause and a schedule's spec.
func serverKey(k string) bool {
	switch k {
	case "passes", "baselined", "seq", pausedKey, specKey:
		return true
	}
	return false
}

// seq is the trigger's newest mirror change number (0: none yet).
func (st state) seq() int64 {
	var n int64
	_ = json.Unmarshal(st["seq"], &n)
	return n
}

func (st state) json() json.RawMessage {
	b, _ := json.Marshal(st)
	return b
}
