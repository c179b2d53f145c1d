package tablewatcher

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/trigger"
)

const (
	// pageSize is the number of rows read and sent at once.
	pageSize = 1000
	// queryTimeout bounds one page query (and the start-up checks).
	queryTimeout = time.Minute
	// reportTimeout bounds reporting an error state to the server, so a
	// server outage does not hold up the next poll for long.
	reportTimeout = 5 * time.Second
)

// watch is one table watcher. Its fields are used by one goroutine at a
// time: Check before Run, then the watcher's own loop.
type watch struct {
	cfg           Config
	src           source
	schema, table string
	db            *sql.DB
	client        *client.Client
	mode          trigger.Mode
	clock         clock.Clock
	log           *slog.Logger
	on            map[string]model.EventAction
	pageSize      int

	// plan and stmts exist once prepare succeeded; a database error drops
	// them so the next poll checks the table again.
	plan  *plan
	stmts map[string]*sql.Stmt

	// st is the state as last stored by the server (or read from it);
	// loaded false makes the next poll read it again.
	st     state
	loaded bool

	// sent remembers the rows at the cursor (atVersion) that the server
	// has, key → fingerprint mark, so incremental polls, which read the
	// rows at the cursor again, do not send them again and again.
	atVersion string
	sent      map[string]string

	// seq is the newest mirror change number the server has told this
	// copy of (TriggerResult.Seq). Each page carries the value it had
	// before the page was read (Observation.ReadAfter), so the server can
	// tell a page read before another copy's newer report.
	seq int64

	// reported is the error last reported to the server ("" none);
	// reportKnown says whether the server's error state is known to be
	// it (not at start, nor after standing by: another copy may have
	// left an error there).
	reported    string
	reportKnown bool
	// filterErr is the filter error last logged.
	filterErr string

	// afterPoll, set by tests, is called after each poll of the loop.
	afterPoll func(error)
}

// label names the watcher in errors: table_watchers[music].
func (x *watch) label() string { return "table_watchers[" + x.cfg.Name + "]" }

// active polls while this copy may act: at once, then every cfg.Poll.
func (x *watch) active(ctx context.Context) error {
	x.log.Info("table watcher active", "mode", x.mode.Mode, "poll", x.cfg.Poll, "version_column", x.cfg.VersionColumn)
	// Another copy may have moved the state on, or reported an error,
	// while this one stood by.
	x.loaded, x.reportKnown = false, false
	t := time.NewTicker(x.cfg.Poll)
	defer t.Stop()
	for {
		x.tick(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// tick runs one poll and reports how it went.
func (x *watch) tick(ctx context.Context) {
	err := x.pollOnce(ctx)
	if ctx.Err() == nil {
		// Not when stopping: a poll cut short by shutdown or a lost
		// lease is not an error of the watcher.
		x.report(ctx, err)
	}
	if x.afterPoll != nil {
		x.afterPoll(err)
	}
}

// report logs a failed poll and sets the trigger's error state on the
// server when it changes (cleared again by the next good poll), so
// status shows a missing table or an unreachable database.
func (x *watch) report(ctx context.Context, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
		x.log.Warn("table watcher poll failed; retrying at the next poll", "err", err)
	}
	if x.reportKnown && msg == x.reported {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, reportTimeout)
	defer cancel()
	rerr := trigger.ReportError(rctx, x.client, x.cfg.Name, model.TriggerTable, msg)
	if rerr != nil && (msg != "" || !errors.Is(rerr, model.ErrNotFound)) { // no trigger yet: no error to clear
		x.log.Debug("cannot report the trigger's error state", "err", rerr)
		return
	}
	x.reported, x.reportKnown = msg, true
}

// observe sends one page, read when the copy knew change number readAfter,
// to the server and adds what became of its events (started, existing,
// skipped, ...) to tally. It returns how many items the server deferred
// (see model.Observation.ReadAfter): those must be read again.
func (x *watch) observe(ctx context.Context, o model.Observation, readAfter int64, tally map[string]int) (int, error) {
	o.Kind = model.TriggerTable
	o.On = x.on
	o.FirstStart = x.cfg.FirstStart
	if x.st.stored {
		// The first pass is done: from now on an empty mirror (an emptied
		// table) is no first start, and rows appearing are created.
		o.FirstStart = FirstStartFire
	}
	o.DryRun = x.cfg.DryRun
	if o.Items == nil {
		o.Items = []model.ObservedItem{}
	}
	o.ReadAfter = &readAfter
	res, err := trigger.Observe(ctx, x.client, x.cfg.Name, o)
	if err != nil {
		return 0, err
	}
	x.seq = max(x.seq, res.Seq)
	for _, r := range res.Records {
		tally[r.Action]++
	}
	if len(res.Deferred) > 0 {
		tally["deferred"] += len(res.Deferred)
	}
	return len(res.Deferred), nil
}

// stmt returns the prepared statement for query. Statements are prepared
// (not just run) so go-sql-driver/mysql always uses its binary protocol,
// which types values alike whether a query has arguments or not.
func (x *watch) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if s, ok := x.stmts[query]; ok {
		return s, nil
	}
	s, err := x.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if x.stmts == nil {
		x.stmts = make(map[string]*sql.Stmt)
	}
	x.stmts[query] = s
	return s, nil
}

// dropPlan forgets the plan and its statements.
func (x *watch) dropPlan() {
	for _, s := range x.stmts {
		_ = s.Close() // closing a statement only frees it; nothing to report
	}
	x.stmts, x.plan = nil, nil
}

// close releases the database handle.
func (x *watch) close() error {
	x.dropPlan()
	if err := x.db.Close(); err != nil && !errors.Is(err, sql.ErrConnDone) {
		return err
	}
	return nil
}
