// Package tablewatcher is the table watcher role (dpe tablewatcher, DESIGN §5):
// it polls tables of content databases (PostgreSQL, MariaDB/MySQL,
// SQLite) and hands what it sees to the server, which compares it with the
// watcher's mirror in the core DB and starts created / updated / deleted
// workflows in the same transaction, exactly once.
//
// A watcher keeps nothing that matters in memory. Its state (the version
// cursor, the polls since the last full pass) is stored by the server with
// each page, so a standby copy continues where the active one stopped.
//
// Two kinds of poll:
//
//   - Incremental (with a version column): the rows whose version is at or
//     above the cursor, in (version, key) order, in pages of 1000. The
//     cursor is the column's own value (a modified time or a row version),
//     never a clock reading, so no clock needs to agree with another. Rows
//     at the cursor itself are read again on the next poll (>=, not >): a
//     row committed later with the same version (a second-precision time,
//     one bulk update of many rows) is not lost; the server ignores a row
//     whose fingerprint it has. A row committed late with a version below
//     the cursor (a long transaction that set its time early) is missed by
//     incremental polls and found by the next full pass.
//   - Full pass (every full_pass_every polls, every poll without a version
//     column, and first of all): the whole table in key order, in pages of
//     1000 with one pass id; the server deletes the mirror entries not
//     seen since the pass began, which is how deletions are found.
//
// Rows with a NULL key column are never read. Rows with a NULL version
// are seen by full passes only. A row that does not match the filter is
// treated as absent: left out of full passes, reported deleted by an
// incremental poll.
//
// Nothing from the config is spliced into SQL unquoted: identifiers must
// match [A-Za-z_][A-Za-z0-9_]* and are quoted for the dialect; values are
// bind parameters.
package tablewatcher

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/holder"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/trigger"
)

// Options configures a Watcher.
type Options struct {
	// Client talks to the dpe servers. Required.
	Client *client.Client
	// Watchers are the table watchers to run; New validates them.
	Watchers []Config
	// Mode is how copies run together. In standby mode each watcher has
	// its own lease: Mode.Group (default the watcher's name) when there is
	// one watcher, Group/<name> when there are several. Empty Holder:
	// holder.New("tablewatcher").
	Mode trigger.Mode
	// Clock tells the time (pass ids). Nil: the real clock.
	Clock clock.Clock
	// Log receives the watchers' records. Nil: slog.Default().
	Log *slog.Logger
}

// Watcher runs table watchers. Create it with New; call Check, then Run,
// then Close.
type Watcher struct {
	client  *client.Client
	watches []*watch
}

// New validates the watchers and prepares (without connecting) their
// content databases.
func New(o Options) (*Watcher, error) {
	if o.Client == nil {
		return nil, errors.New("table watcher: no client")
	}
	if len(o.Watchers) == 0 {
		return nil, errors.New("table watcher: no table_watchers configured")
	}
	cfgs := append([]Config(nil), o.Watchers...)
	if err := ValidateAll(cfgs); err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Mode.Holder == "" {
		o.Mode.Holder = holder.New("tablewatcher")
	}
	w := &Watcher{client: o.Client}
	for _, cfg := range cfgs {
		m := o.Mode
		if m.Group != "" && len(cfgs) > 1 {
			// One lease per watcher: copies of the same group compete
			// watcher by watcher.
			m.Group += "/" + cfg.Name
		}
		if err := m.Validate(cfg.Name); err != nil {
			w.Close()
			return nil, err
		}
		x, err := newWatch(cfg, o.Client, m, o.Clock, o.Log)
		if err != nil {
			w.Close()
			return nil, err
		}
		w.watches = append(w.watches, x)
	}
	return w, nil
}

// Check connects to every content database and verifies that each
// watcher's table and columns exist, returning every problem found, e.g.
// table_watchers[music]: column "modifed" not found in table music
// (version_column). Call it before Run, not during.
func (w *Watcher) Check(ctx context.Context) error {
	errs := make([]error, len(w.watches))
	var wg sync.WaitGroup
	for i, x := range w.watches {
		wg.Go(func() { errs[i] = x.prepare(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Run runs every watcher until ctx ends: in concurrent mode always, in
// standby mode while this copy holds the watcher's lease. Failures of a
// content database or of the servers are logged, reported to the server
// as the trigger's error and retried at the next poll; they do not end
// Run. The end of ctx is not an error.
func (w *Watcher) Run(ctx context.Context) error {
	errs := make([]error, len(w.watches))
	var wg sync.WaitGroup
	for i, x := range w.watches {
		wg.Go(func() {
			errs[i] = trigger.Run(ctx, w.client, x.cfg.Name, x.mode, x.log, x.active)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close closes the content database handles. Call it after Run returned.
func (w *Watcher) Close() error {
	var errs []error
	for _, x := range w.watches {
		errs = append(errs, x.close())
	}
	return errors.Join(errs...)
}

// newPassID names one full pass: the time (for people reading logs) and
// random bits (for uniqueness across copies).
func newPassID(c clock.Clock) string {
	return c.Now().UTC().Format("20060102T150405.000000000Z") + "-" + randomHex(8)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes rather than return short
	return hex.EncodeToString(b)
}

// newWatch sets up one watcher; the database is opened lazily by sql.
func newWatch(cfg Config, c *client.Client, m trigger.Mode, clk clock.Clock, log *slog.Logger) (*watch, error) {
	db, err := sql.Open(cfg.source.driver, cfg.source.dsn)
	if err != nil {
		return nil, fmt.Errorf("table_watchers[%s]: open %s: %w", cfg.Name, cfg.source.redacted, err)
	}
	// One goroutine polls at a time; a second connection covers a query
	// racing a lost connection's replacement. Recycling connections
	// follows a content database that fails over behind one address.
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(30 * time.Minute)
	schema, table := "", cfg.Table
	if s, t, ok := strings.Cut(cfg.Table, "."); ok {
		schema, table = s, t
	}
	on := make(map[string]model.EventAction, len(cfg.On))
	for ev, a := range cfg.On {
		on[ev] = model.EventAction{Template: a.Template, Args: a.Args, Priority: a.Priority}
	}
	return &watch{
		cfg: cfg, src: cfg.source, db: db, schema: schema, table: table,
		client: c, mode: m, clock: clk, on: on, pageSize: pageSize,
		log: log.With("trigger", cfg.Name, "table", cfg.Table),
	}, nil
}
