package folderwatcher

import (
	"strconv"
	"strings"
	"time"
)

// fingerprint identifies one version of a file: its size and modification
// time in nanoseconds. On the wire it reads "size:mtimeUnixNano".
type fingerprint struct {
	size, mtime int64
}

// String is the wire form, e.g. "1024:1764092400123456789".
func (f fingerprint) String() string {
	b := make([]byte, 0, 40)
	b = strconv.AppendInt(b, f.size, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, f.mtime, 10)
	return string(b)
}

// parseFingerprint reads the wire form (for tests and logs).
func parseFingerprint(s string) (fingerprint, bool) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return fingerprint{}, false
	}
	size, err1 := strconv.ParseInt(a, 10, 64)
	mtime, err2 := strconv.ParseInt(b, 10, 64)
	return fingerprint{size, mtime}, err1 == nil && err2 == nil
}

// entry is what a watcher remembers of one file between polls. It is only
// a cache: the truth is the server's mirror, and a new copy of the watcher
// starts with an empty memory.
type entry struct {
	cur   fingerprint // as last seen
	since time.Time   // when cur was first seen (this watcher's clock)
	acked fingerprint // as the server last acknowledged it
	// hasAck: acked is set (the server stored this version).
	hasAck bool
	// seen is the number of the last poll that saw the file.
	seen uint64
}

// rule decides when a present file is ready to count (see Config).
type rule struct {
	stableFor time.Duration // 0: not required
	minAge    time.Duration // 0: not required
	marker    bool          // a done marker must exist
}

func newRule(c Config) rule {
	return rule{stableFor: c.StableFor, minAge: c.MinAge, marker: c.DoneMarker != ""}
}

// ready reports whether the file is ready now and, when it is not and
// only time is missing, when it will be (zero when that depends on
// something else: a marker, another change).
func (r rule) ready(e *entry, hasMarker bool, now time.Time) (bool, time.Time) {
	if r.marker && !hasMarker {
		return false, time.Time{}
	}
	var due time.Time
	if r.stableFor > 0 {
		due = e.since.Add(r.stableFor)
	}
	if r.minAge > 0 {
		if t := time.Unix(0, e.cur.mtime).Add(r.minAge); t.After(due) {
			due = t
		}
	}
	if now.Before(due) {
		return false, due
	}
	return true, time.Time{}
}
