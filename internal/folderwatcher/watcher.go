// Package folderwatcher is the folder watcher role (dpe folderwatcher, DESIGN §5):
// it watches folders and hands what it sees to the server, which compares
// it with the watcher's mirror in the core DB and starts the workflow
// instances of created, updated and deleted files in the same transaction.
//
// # How a watcher sees a folder
//
// Polling is the source of truth (it works on network shares, where OS
// notifications miss other clients' writes); notifications, where the
// file system gives them, only bring the next poll forward. Every poll
// walks the tree. A file is identified by its slash-separated path
// relative to the folder (the item key) and versioned by its fingerprint,
// "size:mtimeUnixNano". A file is reported only once it is ready (see
// Config: stable_for, min_age, done_marker); until then it is reported as
// unstable, which keeps it alive in the mirror but starts nothing, so a
// half-written file never starts a workflow.
//
// # What a poll sends
//
// The watcher remembers, in memory, the fingerprint the server
// acknowledged for each file. Each poll sends, in incremental pages of at
// most PageSize items, the ready files whose fingerprint differs from it
// and a Deleted item for each file gone since the last poll. At start (and
// on every takeover), after the folder comes back, and every
// full_pass_every polls, it sends a full pass instead: every file, ready or
// unstable, in pages sharing one random pass id, the last one Complete, so
// the server forgets (and reports deleted) whatever the pass did not list.
// Memory is only a cache: a new copy starts empty, resends what it finds
// and the server, comparing with its mirror, starts nothing for unchanged
// files.
//
// # What is never reported
//
// A scan that could not read part of the tree (a directory it may not
// list, a file it may not stat) never reports anything under that part as
// deleted and never marks a pass Complete. A missing or unreadable folder
// is reported as the trigger's error and nothing at all is sent until it
// is back; then the error is cleared and a full pass runs, which finds the
// unchanged files unchanged.
package folderwatcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/clock"
	"github.com/dpe-engine/dpe/internal/holder"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/trigger"
)

// Options configure a Watcher.
type Options struct {
	Client   *client.Client
	Watchers []Config
	// Mode is how copies of the watchers run together. With several
	// watchers and an explicit Group, each watcher's lease group is
	// Group/name, so each has its own standby lease.
	Mode  trigger.Mode
	Clock clock.Clock  // nil: the real clock
	Log   *slog.Logger // nil: slog.Default()
}

// Watcher runs the folder watchers of one config file. Create it with New.
type Watcher struct {
	client  *client.Client
	mode    trigger.Mode
	watches []*watch
}

// New validates the watchers and returns a Watcher ready to Run.
func New(o Options) (*Watcher, error) {
	if o.Client == nil {
		return nil, errors.New("folder watcher: no client")
	}
	if len(o.Watchers) == 0 {
		return nil, errors.New("folder watcher: no folder_watchers configured")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Mode.Holder == "" {
		o.Mode.Holder = holder.New("folderwatcher")
	}
	if err := ValidateAll(o.Watchers); err != nil {
		return nil, err
	}
	var missing []error
	for i := range o.Watchers {
		if err := o.Watchers[i].CheckPath(); err != nil {
			missing = append(missing, err)
		}
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}
	w := &Watcher{client: o.Client, mode: o.Mode}
	for _, c := range o.Watchers {
		if err := o.Mode.Validate(c.Name); err != nil {
			return nil, err
		}
		wt, err := newWatch(c, o.Client, o.Clock, o.Log)
		if err != nil {
			return nil, err
		}
		w.watches = append(w.watches, wt)
	}
	return w, nil
}

// Run runs every watcher under trigger.Run (always active in concurrent
// mode, while holding its lease in standby mode) until ctx ends. It
// returns nil on cancellation.
func (w *Watcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(w.watches))
	for i, wt := range w.watches {
		m := w.mode
		if m.Group != "" && len(w.watches) > 1 {
			m.Group += "/" + wt.cfg.Name
		}
		wg.Go(func() {
			errs[i] = trigger.Run(ctx, w.client, wt.cfg.Name, m, wt.log, wt.run)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// minGap is the shortest time between the end of a poll and the start of
// the next.
const minGap = 250 * time.Millisecond

// errUnknown is watch.errShown before the watcher knows what the server
// shows: the first poll that finds the folder clears any error a previous
// copy left.
const errUnknown = "\x00unknown"

// watch is one folder watcher. Its methods run on one goroutine.
type watch struct {
	cfg    Config // with defaults
	client *client.Client
	clock  clock.Clock
	log    *slog.Logger
	on     map[string]model.EventAction
	rule   rule
	sc     scanner
	// observe sends one page: trigger.Observe with the watcher's name.
	observe func(ctx context.Context, o model.Observation) (model.TriggerResult, error)

	files     map[string]*entry // keyed by file key
	poll      uint64            // polls that scanned the folder
	sinceFull int               // polls since the last full pass
	fullDue   bool
	errShown  string    // the error the server shows for this watcher
	nextDue   time.Time // when the first waiting file may become ready
	gone      []string  // reused
	// seq is the newest mirror change number the server has told this
	// copy of (TriggerResult.Seq); pages carry the value it had before
	// the scan they come from (Observation.ReadAfter).
	seq       int64
	readAfter int64     // seq when the current poll's scan began
	notify    *notifier // while running, when the OS notifies
	pg        pager     // reused
}

func newWatch(c Config, cl *client.Client, clk clock.Clock, log *slog.Logger) (*watch, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	log = log.With("trigger", c.Name, "path", c.Path)
	w := &watch{
		cfg: c, client: cl, clock: clk, log: log,
		on:    c.actions(),
		rule:  newRule(c),
		files: make(map[string]*entry),
		sc: scanner{
			root: c.Path, recursive: c.Recursive, marker: c.DoneMarker, log: log,
			match: newMatcher(c.Include, c.Exclude),
		},
		fullDue:  true,
		errShown: errUnknown,
	}
	w.observe = func(ctx context.Context, o model.Observation) (model.TriggerResult, error) {
		return trigger.Observe(ctx, cl, c.Name, o)
	}
	return w, nil
}

// pollOnce scans the folder and sends what changed (or a full pass when
// one is due). After an error the next poll sends again whatever was not
// acknowledged; a full pass cut short is started afresh.
func (w *watch) pollOnce(ctx context.Context) error {
	w.readAfter = w.seq
	s, err := w.sc.run(ctx)
	if err != nil {
		return fmt.Errorf("scan %s: %w", w.cfg.Path, err)
	}
	if s.rootErr != nil {
		return w.rootDown(ctx, s.rootErr)
	}
	var errs []error
	if err := w.rootUp(ctx); err != nil {
		errs = append(errs, err) // sending does not depend on it
	}
	w.poll++
	w.sinceFull++
	full := w.fullDue || w.sinceFull >= w.cfg.FullPassEvery
	if w.notify != nil {
		// Before sending: what changes from now on is notified.
		w.notify.sync(s.dirs, s.complete(), full)
	}
	gone := w.update(s)
	if err := w.sendChanges(ctx, s, gone, full); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if full {
		w.fullDue = true // until the pass got through
		if err := w.sendFull(ctx, s); err != nil {
			return errors.Join(append(errs, err)...)
		}
		w.fullDue, w.sinceFull = false, 0
	}
	w.log.DebugContext(ctx, "folder polled", "files", len(s.files), "gone", len(gone),
		"full", full, "complete", s.complete())
	return errors.Join(errs...)
}

// update brings memory up to date with scan s and returns the keys gone
// since the last poll (sorted), leaving alone what the scan could not see.
func (w *watch) update(s *scan) []string {
	now := w.clock.Now()
	w.nextDue = time.Time{}
	for i := range s.files {
		f := &s.files[i]
		fp := fingerprint{f.size, f.mtime}
		e := w.files[f.key]
		switch {
		case e == nil:
			e = &entry{cur: fp, since: now}
			w.files[strings.Clone(f.key)] = e // the walk's path string is bigger
		case e.cur != fp:
			e.cur, e.since = fp, now
		}
		e.seen = w.poll
		_, marked := s.markers[f.key]
		ready, due := w.rule.ready(e, marked, now)
		f.e, f.ready = e, ready
		if !due.IsZero() && (w.nextDue.IsZero() || due.Before(w.nextDue)) {
			w.nextDue = due
		}
	}
	w.gone = w.gone[:0]
	for k, e := range w.files {
		switch {
		case e.seen == w.poll:
		case s.blinded(k):
			e.seen = w.poll // unknown: keep it as it was
		default:
			w.gone = append(w.gone, k)
		}
	}
	slices.Sort(w.gone)
	return w.gone
}

// rootDown handles a folder that is missing or unreadable: report it once
// and send nothing (no deletions, no pass) until it is back.
func (w *watch) rootDown(ctx context.Context, cause error) error {
	w.fullDue = true
	msg := rootProblem(w.cfg.Path, cause)
	if w.errShown == msg {
		return nil
	}
	w.log.WarnContext(ctx, "watched folder is not available; nothing is reported until it is back", "err", msg)
	if err := trigger.ReportError(ctx, w.client, w.cfg.Name, model.TriggerFolder, msg); err != nil {
		return fmt.Errorf("report folder error: %w", err)
	}
	w.errShown = msg
	return nil
}

// rootUp clears the error state once the folder is readable.
func (w *watch) rootUp(ctx context.Context) error {
	if w.errShown == "" {
		return nil
	}
	if w.errShown != errUnknown {
		w.log.InfoContext(ctx, "watched folder is back")
	}
	// Not found: the server knows no such trigger yet, so no error either.
	if err := trigger.ReportError(ctx, w.client, w.cfg.Name, model.TriggerFolder, ""); err != nil && !errors.Is(err, model.ErrNotFound) {
		return fmt.Errorf("clear folder error: %w", err)
	}
	w.errShown = ""
	return nil
}

// run is the watcher's active life (see trigger.Run): a full pass first,
// then a poll every Poll, brought forward by OS notifications and by files
// due to become ready.
func (w *watch) run(ctx context.Context) error {
	// A takeover may follow another copy's work: the server's error state
	// and mirror are unknown, memory is only a hint.
	w.fullDue, w.errShown = true, errUnknown
	var hints <-chan struct{}
	if n := startNotifier(w.cfg.Path, w.sc.match, w.cfg.DoneMarker, w.log); n != nil {
		w.notify, hints = n, n.hints
		defer func() {
			n.close()
			w.notify = nil
		}()
	}
	failing := false
	for {
		start := time.Now()
		err := w.pollOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case err != nil && !failing:
			w.log.WarnContext(ctx, "folder poll failed; trying again every poll", "err", err)
		case err != nil:
			w.log.DebugContext(ctx, "folder poll failed again", "err", err)
		case failing:
			w.log.InfoContext(ctx, "folder poll works again")
		}
		failing = err != nil
		end := time.Now()
		// Poll again after Poll, or when a waiting file is due, but never
		// sooner than gap after this poll: notifications during a long
		// copy would otherwise keep the watcher scanning. Twice the scan
		// time keeps a big tree's scans under a third of the time.
		gap := min(w.cfg.Poll, max(2*end.Sub(start), minGap))
		wait := w.cfg.Poll
		if !w.nextDue.IsZero() {
			wait = min(wait, w.nextDue.Sub(w.clock.Now())+10*time.Millisecond)
		}
		if !sleep(ctx, max(wait, gap), hints, end.Add(gap)) {
			return nil
		}
	}
}

// sleep waits d; a hint cuts the wait short, though not before earliest.
// It reports false when ctx ended.
func sleep(ctx context.Context, d time.Duration, hints <-chan struct{}, earliest time.Time) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	case <-hints:
	}
	wait := time.Until(earliest)
	if wait <= 0 {
		return true
	}
	t.Reset(wait)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
