package tablewatcher

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/expr-lang/expr"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/trigger"
)

// dbError marks a failure of the content database (as opposed to one of
// the servers), after which the table is checked again.
type dbError struct{ err error }

func (e *dbError) Error() string { return e.err.Error() }
func (e *dbError) Unwrap() error { return e.err }

// pollOnce runs one poll: a full pass when one is due, an incremental
// poll otherwise. On failure the state is read from the server again
// before the next poll.
func (x *watch) pollOnce(ctx context.Context) error {
	err := x.poll(ctx)
	if err != nil {
		x.loaded = false
		if _, ok := errors.AsType[*dbError](err); ok {
			x.dropPlan()
		}
	}
	return err
}

func (x *watch) poll(ctx context.Context) error {
	if !x.loaded {
		st, err := x.loadState(ctx)
		if err != nil {
			return err
		}
		x.st, x.loaded = st, true
		x.atVersion, x.sent = "", nil
	}
	if err := x.prepare(ctx); err != nil {
		return &dbError{err}
	}
	if x.cfg.VersionColumn == "" || !x.st.stored || x.st.column != x.cfg.VersionColumn ||
		x.st.polls+1 >= x.cfg.FullPassEvery {
		return x.fullPass(ctx)
	}
	return x.incremental(ctx)
}

// loadState reads the watcher's state from the server. None (a new
// trigger, or one whose state is unreadable) means a full pass first.
func (x *watch) loadState(ctx context.Context) (state, error) {
	t, err := trigger.Get(ctx, x.client, x.cfg.Name)
	if errors.Is(err, model.ErrNotFound) {
		return state{}, nil
	}
	if err != nil {
		return state{}, fmt.Errorf("%s: read the trigger's state: %w", x.label(), err)
	}
	st, err := decodeState(t.State)
	if err != nil {
		x.log.Warn("stored state unreadable; starting with a full pass", "err", err)
		return state{stored: true}, nil
	}
	return st, nil
}

// fullPass reads the whole table in key order and sends it as one pass.
func (x *watch) fullPass(ctx context.Context) error {
	start := x.clock.Now()
	next := x.st
	next.stored, next.polls = true, 0
	if x.cfg.VersionColumn != "" && next.column != x.cfg.VersionColumn {
		// No cursor yet: start incremental polls from the highest version
		// now, read before the pass so rows changed during it are read
		// again by the next incremental poll rather than missed.
		v, err := x.maxVersion(ctx)
		if err != nil {
			return err
		}
		next.column, next.cursor = x.cfg.VersionColumn, v
	}
	if x.cfg.VersionColumn == "" {
		next.column, next.cursor = "", nil
	}
	stateJSON, err := next.encode()
	if err != nil {
		return fmt.Errorf("%s: encode state: %w", x.label(), err)
	}

	pass := newPassID(x.clock)
	// Open the pass before reading anything, so that the server's "seen
	// since the pass began" covers every row this pass reads; a row that
	// another copy reports while this pass runs is then never deleted by
	// it.
	tally := map[string]int{}
	if _, err := x.observe(ctx, model.Observation{Pass: pass}, x.seq, tally); err != nil {
		return fmt.Errorf("%s: open pass: %w", x.label(), err)
	}
	var last []any
	var nRows, nItems, pages, filterErrs, deferred int
	for {
		readAfter := x.seq // before the read
		var rows []row
		if last == nil {
			rows, err = x.page(ctx, x.plan.fullFirst)
		} else {
			rows, err = x.page(ctx, x.plan.fullNext, pick(last, x.plan.fullNextArgs)...)
		}
		if err != nil {
			return err
		}
		items := make([]model.ObservedItem, 0, len(rows))
		for _, r := range rows {
			if x.match(r, &filterErrs) {
				items = append(items, item(r, false))
			}
		}
		complete := len(rows) < x.pageSize
		// Pages whose rows all fail the filter carry nothing the server
		// needs; the last page always goes, it ends the pass.
		if len(items) > 0 || complete {
			o := model.Observation{Pass: pass, Items: items, Complete: complete}
			if complete {
				o.State = stateJSON
			}
			n, err := x.observe(ctx, o, readAfter, tally)
			if err != nil {
				return fmt.Errorf("%s: send pass page: %w", x.label(), err)
			}
			deferred += n
		}
		nRows, nItems, pages = nRows+len(rows), nItems+len(items), pages+1
		if complete {
			break
		}
		last = rows[len(rows)-1].key
	}
	x.st = next
	if deferred > 0 {
		// Another copy reported some rows while this pass read them: which
		// read is newer is unknown, so the next poll reads all again.
		x.st.polls = x.cfg.FullPassEvery
	}
	x.log.Info("table watcher full pass done", "pass", pass, "rows", nRows, "items", nItems, "pages", pages,
		"events", tally, "filter_errors", filterErrs, "took", x.clock.Now().Sub(start))
	return nil
}

// incremental reads the rows at or above the cursor in (version, key)
// order and sends the changed ones, moving the cursor on page by page.
func (x *watch) incremental(ctx context.Context) error {
	polls := x.st.polls + 1
	var last []any // (version, key...) of the last row read
	var nItems, filterErrs int
	tally := map[string]int{}
	for {
		readAfter := x.seq // before the read
		var rows []row
		var err error
		switch {
		case last != nil:
			rows, err = x.page(ctx, x.plan.incrNext, pick(last, x.plan.incrNextArgs)...)
		case x.st.cursor == nil:
			rows, err = x.page(ctx, x.plan.incrAll)
		default:
			rows, err = x.page(ctx, x.plan.incrFirst, x.st.cursor)
		}
		if err != nil {
			return err
		}
		items := make([]model.ObservedItem, 0, len(rows))
		marks := make([]string, len(rows))
		for i, r := range rows {
			// A row leaving the filter is reported gone now; the server
			// ignores a deleted item it has no entry for.
			it := item(r, !x.match(r, &filterErrs))
			marks[i] = mark(it)
			if r.versionKey != "" && r.versionKey == x.atVersion && x.sent[r.keyJSON] == marks[i] {
				continue // the server has it from this copy already
			}
			items = append(items, it)
		}
		if len(items) > 0 {
			next := state{stored: true, column: x.cfg.VersionColumn, cursor: rows[len(rows)-1].version, polls: polls}
			stateJSON, err := next.encode()
			if err != nil {
				return fmt.Errorf("%s: encode state: %w", x.label(), err)
			}
			n, err := x.observe(ctx, model.Observation{Incremental: true, Items: items, State: stateJSON}, readAfter, tally)
			if err != nil {
				return fmt.Errorf("%s: send changes: %w", x.label(), err)
			}
			if n > 0 {
				// Another copy reported some of these rows after this
				// read began: the cursor stays, the next poll reads them
				// again.
				break
			}
			x.st = next
			x.noteSent(rows, marks)
			nItems += len(items)
		}
		if len(rows) < x.pageSize {
			break
		}
		lr := rows[len(rows)-1]
		last = append([]any{lr.version}, lr.key...)
	}
	x.st.polls = polls
	switch {
	case len(tally) > 0:
		x.log.Info("table watcher changes", "items", nItems, "events", tally, "filter_errors", filterErrs)
	case nItems > 0:
		x.log.Debug("table watcher changes without events", "items", nItems, "filter_errors", filterErrs)
	}
	return nil
}

// item makes the observed item of r.
func item(r row, deleted bool) model.ObservedItem {
	return model.ObservedItem{Key: r.keyJSON, Fingerprint: r.fingerprint, Data: r.data, Deleted: deleted}
}

// mark is what the server has of an item: its fingerprint and whether it
// was reported deleted.
func mark(it model.ObservedItem) string {
	if it.Deleted {
		return "deleted " + it.Fingerprint
	}
	return it.Fingerprint
}

// noteSent remembers the marks of the rows of a sent page that are at the
// new cursor (the last row's version).
func (x *watch) noteSent(rows []row, marks []string) {
	v := rows[len(rows)-1].versionKey
	if v != x.atVersion {
		x.atVersion, x.sent = v, make(map[string]string)
	}
	for i, r := range rows {
		if r.versionKey == v {
			x.sent[r.keyJSON] = marks[i]
		}
	}
}

// match applies the filter to r. A row the filter fails on (compares a
// NULL, say) counts as not matching; failures are counted in *errs and
// logged when the message differs from the last one logged.
func (x *watch) match(r row, errs *int) bool {
	if x.cfg.filter == nil {
		return true
	}
	out, err := expr.Run(x.cfg.filter, map[string]any{"row": r.data})
	if err != nil {
		*errs++
		if msg := err.Error(); msg != x.filterErr {
			x.filterErr = msg
			x.log.Warn("filter failed on a row; treating it as not matching", "key", r.keyJSON, "err", err)
		}
		return false
	}
	ok, _ := out.(bool) // compiled with AsBool: a bool or an error
	return ok
}

// page runs one page query.
func (x *watch) page(ctx context.Context, query string, args ...any) ([]row, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	s, err := x.stmt(ctx, query)
	if err != nil {
		return nil, &dbError{fmt.Errorf("%s: prepare: %w", x.label(), err)}
	}
	rows, err := s.QueryContext(ctx, args...)
	if err != nil {
		return nil, &dbError{fmt.Errorf("%s: query table %s: %w", x.label(), x.cfg.Table, err)}
	}
	defer rows.Close()
	out, err := scanRows(rows, x.plan)
	if err != nil {
		return nil, &dbError{fmt.Errorf("%s: read table %s: %w", x.label(), x.cfg.Table, err)}
	}
	return out, nil
}

// maxVersion reads the highest version in the table (nil: none).
func (x *watch) maxVersion(ctx context.Context) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	s, err := x.stmt(ctx, x.plan.maxVersion)
	if err != nil {
		return nil, &dbError{fmt.Errorf("%s: prepare: %w", x.label(), err)}
	}
	rows, err := s.QueryContext(ctx)
	if err != nil {
		return nil, &dbError{fmt.Errorf("%s: read the highest version: %w", x.label(), err)}
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, &dbError{err}
	}
	var v any
	if rows.Next() {
		if err := rows.Scan(&v); err != nil {
			return nil, &dbError{err}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, &dbError{err}
	}
	if v == nil {
		return nil, nil
	}
	return bindValue(v, strings.ToUpper(cts[0].DatabaseTypeName())), nil
}

// pick returns vals[i] for each i.
func pick(vals []any, idx []int) []any {
	out := make([]any, len(idx))
	for j, i := range idx {
		out[j] = vals[i]
	}
	return out
}
