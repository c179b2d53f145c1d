package folderwatcher

import (
	"context"
	"crypto/rand"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// PageSize is the most items one observation page carries.
const PageSize = 1000

// ref ties a sent item to the memory it updates once the server
// acknowledged the page.
type ref struct {
	key     string
	e       *entry
	fp      fingerprint
	stable  bool // the server stores fp for key
	deleted bool // the server forgets key
}

// pager cuts a stream of items into pages of at most PageSize and sends
// them. Its slices are reused from page to page: the client has encoded a
// page before Observe returns.
type pager struct {
	w     *watch
	base  model.Observation
	items []model.ObservedItem
	refs  []ref
	pages int // pages sent
	full  bool
}

func (w *watch) newPager(full bool) *pager {
	p := &w.pg
	p.w, p.full, p.pages = w, full, 0
	p.items, p.refs = p.items[:0], p.refs[:0]
	p.base = model.Observation{
		Kind:        model.TriggerFolder,
		On:          w.on,
		FirstStart:  w.cfg.FirstStart,
		DryRun:      w.cfg.DryRun,
		Incremental: !full,
	}
	if full {
		p.base.Pass = rand.Text() // one id for all pages of the pass
	}
	return p
}

// add queues one item. A full pass holds back a full page until the next
// item comes, so that the last page is known when it is sent (it carries
// Complete).
func (p *pager) add(ctx context.Context, it model.ObservedItem, r ref) error {
	if len(p.items) == PageSize {
		if err := p.send(ctx, false); err != nil {
			return err
		}
	}
	p.items = append(p.items, it)
	p.refs = append(p.refs, r)
	return nil
}

// finish sends what is queued. complete marks the last page of a full pass
// Complete; a full pass that saw the whole tree sends its last page even
// when empty (an emptied folder is news).
func (p *pager) finish(ctx context.Context, complete bool) error {
	if len(p.items) == 0 && !(p.full && complete) {
		return nil
	}
	return p.send(ctx, p.full && complete)
}

// send sends the queued page and, once the server acknowledged it,
// updates the watcher's memory: what it stored, what it forgot.
func (p *pager) send(ctx context.Context, complete bool) error {
	o := p.base
	o.Items, o.Complete = p.items, complete
	readAfter := p.w.readAfter
	o.ReadAfter = &readAfter
	res, err := p.w.observe(ctx, o)
	if err != nil {
		return fmt.Errorf("observe page %d (%d items): %w", p.pages+1, len(p.items), err)
	}
	p.pages++
	p.w.seq = max(p.w.seq, res.Seq)
	// Deferred items (another copy reported them after this scan began)
	// stay unacknowledged, so the next poll sends them again.
	var deferred map[string]bool
	if len(res.Deferred) > 0 {
		deferred = make(map[string]bool, len(res.Deferred))
		for _, k := range res.Deferred {
			deferred[k] = true
		}
		p.w.log.DebugContext(ctx, "items deferred: another copy reported them meanwhile", "items", len(res.Deferred))
	}
	for i, r := range p.refs {
		if deferred[p.items[i].Key] {
			continue
		}
		switch {
		case r.deleted:
			// Forget it unless it came back meanwhile (it cannot within
			// one poll, but the check keeps the rule local).
			if e, ok := p.w.files[r.key]; ok && e.seen != p.w.poll {
				delete(p.w.files, r.key)
			}
		case r.stable:
			r.e.acked, r.e.hasAck = r.fp, true
		}
	}
	p.w.logRecords(ctx, res.Records)
	clear(p.items) // drop the Data maps now, keep the capacity
	p.items, p.refs = p.items[:0], p.refs[:0]
	return nil
}

// item is the stable form of a file: key, fingerprint and the event data
// the server evaluates args with.
func (w *watch) item(key string, fp fingerprint) model.ObservedItem {
	return model.ObservedItem{Key: key, Fingerprint: fp.String(), Data: w.data(key, fp)}
}

// data is a file's event data: path (absolute), rel (slash-separated,
// relative to the watched folder), rel_dir, name, dir (absolute), size
// (bytes) and mtime (RFC 3339, UTC, ns). The server adds event.
func (w *watch) data(key string, fp fingerprint) map[string]any {
	abs := filepath.Join(w.cfg.Path, filepath.FromSlash(key))
	return map[string]any{
		"path":    abs,
		"rel":     key,
		"rel_dir": path.Dir(key),
		"name":    path.Base(key),
		"dir":     filepath.Dir(abs),
		"size":    fp.size,
		"mtime":   time.Unix(0, fp.mtime).UTC().Format(time.RFC3339Nano),
	}
}

// sendChanges sends, as incremental pages, a Deleted item for each key in
// gone and, unless a full pass follows, each ready file whose fingerprint
// the server has not acknowledged.
func (w *watch) sendChanges(ctx context.Context, s *scan, gone []string, full bool) error {
	p := w.newPager(false)
	for _, k := range gone {
		e := w.files[k]
		fp := e.cur
		if e.hasAck {
			fp = e.acked
		}
		it := w.item(k, fp)
		it.Deleted = true
		if err := p.add(ctx, it, ref{key: k, e: e, deleted: true}); err != nil {
			return err
		}
	}
	if !full {
		for i := range s.files {
			f := &s.files[i]
			if !f.ready || (f.e.hasAck && f.e.acked == f.e.cur) {
				continue
			}
			if err := p.add(ctx, w.item(f.key, f.e.cur), ref{e: f.e, fp: f.e.cur, stable: true}); err != nil {
				return err
			}
		}
	}
	return p.finish(ctx, false)
}

// sendFull sends every file, ready or not, as one pass; its last page is
// Complete when the scan saw the whole tree, so the server forgets (and
// reports deleted) what the pass did not list.
func (w *watch) sendFull(ctx context.Context, s *scan) error {
	p := w.newPager(true)
	for i := range s.files {
		f := &s.files[i]
		if !f.ready {
			if err := p.add(ctx, model.ObservedItem{Key: f.key, Unstable: true}, ref{}); err != nil {
				return err
			}
			continue
		}
		if err := p.add(ctx, w.item(f.key, f.e.cur), ref{e: f.e, fp: f.e.cur, stable: true}); err != nil {
			return err
		}
	}
	return p.finish(ctx, s.complete())
}

// logRecords logs what the server did with a page: one line per page,
// counts by action (a first pass over a big folder answers with thousands
// of records).
func (w *watch) logRecords(ctx context.Context, recs []model.TriggerRecord) {
	if len(recs) == 0 {
		return
	}
	counts := map[string]int{}
	for _, r := range recs {
		counts[r.Action]++
	}
	actions := make([]string, 0, len(counts))
	for a := range counts {
		actions = append(actions, a)
	}
	slices.Sort(actions)
	args := make([]any, 0, 2*len(actions)+2)
	for _, a := range actions {
		args = append(args, a, counts[a])
	}
	w.log.InfoContext(ctx, "folder watcher events", args...)
}
