package folderwatcher

import (
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// notifier turns OS notifications into hints that a poll is worth doing
// now. It is best effort: it may miss events (network shares, watch
// limits) and may report irrelevant ones; polling stays the truth.
type notifier struct {
	fw     *fsnotify.Watcher
	root   string
	match  matcher
	marker string
	log    *slog.Logger
	hints  chan struct{} // capacity 1: hints coalesce
	done   chan struct{}

	// watched maps each directory watched to the number of the last sync
	// that saw it. Only sync touches it (the poll goroutine).
	watched map[string]uint64
	syncs   uint64
	// failed: a watch could not be added (most likely the inotify watch
	// limit); logged once.
	failed bool
}

// startNotifier watches root, or returns nil when notifications are not
// available here.
func startNotifier(root string, m matcher, marker string, log *slog.Logger) *notifier {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		log.Info("no file system notifications; polling only", "err", err)
		return nil
	}
	n := &notifier{
		fw: fw, root: root, match: m, marker: marker, log: log,
		hints: make(chan struct{}, 1), done: make(chan struct{}),
		watched: make(map[string]uint64),
	}
	go n.forward()
	return n
}

// forward turns events into hints until the watcher is closed.
func (n *notifier) forward() {
	defer close(n.done)
	for {
		select {
		case ev, ok := <-n.fw.Events:
			if !ok {
				return
			}
			if n.relevant(ev) {
				select {
				case n.hints <- struct{}{}:
				default: // a hint is pending already
				}
			}
		case err, ok := <-n.fw.Errors:
			if !ok {
				return
			}
			// Overflows and the like: the next poll catches up anyway.
			n.log.Debug("file system notification error", "err", err)
		}
	}
}

// relevant filters out events that cannot change what a poll reports:
// attribute changes and writes to files the watcher ignores (a *.part
// file being copied would otherwise keep it polling).
func (n *notifier) relevant(ev fsnotify.Event) bool {
	if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		return true // files and directories coming and going
	}
	if !ev.Has(fsnotify.Write) {
		return false
	}
	rel, err := filepath.Rel(n.root, ev.Name)
	if err != nil {
		return true
	}
	rel = filepath.ToSlash(rel)
	name := filepath.Base(ev.Name)
	if n.marker != "" && strings.HasSuffix(name, n.marker) {
		return true
	}
	return n.match.file(rel, name)
}

// sync watches the directories of the last scan. When the scan was
// complete, directories no longer there are dropped; refresh forgets what
// was added before and adds everything again (a directory removed and
// made again needs a new watch, and the OS drops the old one silently).
func (n *notifier) sync(dirs []string, complete, refresh bool) {
	n.syncs++
	if refresh {
		clear(n.watched)
	}
	for _, d := range dirs {
		if _, ok := n.watched[d]; !ok {
			if err := n.fw.Add(d); err != nil {
				if !n.failed {
					n.failed = true
					n.log.Info("cannot watch every directory for notifications; polling covers them", "dir", d, "err", err)
				}
			}
		}
		n.watched[d] = n.syncs
	}
	if !complete {
		return
	}
	for d, at := range n.watched {
		if at != n.syncs {
			_ = n.fw.Remove(d) // mostly gone with its directory already
			delete(n.watched, d)
		}
	}
}

// close stops the notifier and waits for its goroutine.
func (n *notifier) close() {
	_ = n.fw.Close()
	<-n.done
}
