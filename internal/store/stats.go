package store

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// Statser is implemented by engines that report their connection pools
// and commit latency (both do); the server's metrics read it at scrape time.
type Statser interface {
	Stats() Stats
}

// Stats is a reading of an engine's pools and commits.
type Stats struct {
	Pools   []PoolStats
	Commits LatencySnapshot
}

// PoolStats describes one connection pool.
type PoolStats struct {
	Name  string // "main"; SQLite: "writer" and "reader"
	Max   int    // connections allowed (0: no limit)
	Open  int
	InUse int
	Idle  int
	// Waits counts acquisitions that had to wait for a connection, and
	// WaitTime their total wait.
	Waits    int64
	WaitTime time.Duration
}

// CommitBuckets are the upper bounds of the commit latency histogram.
var CommitBuckets = []time.Duration{
	250 * time.Microsecond, 500 * time.Microsecond, time.Millisecond, 2500 * time.Microsecond,
	5 * time.Millisecond, 10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second, 5 * time.Second,
}

// Latency is a lock-free histogram of durations over CommitBuckets, which
// an engine feeds with the time of each commit. The zero value is ready.
type Latency struct {
	counts [14]atomic.Uint64 // one per bucket, then the overflow
	sum    atomic.Int64      // nanoseconds
}

// Observe records one duration.
func (l *Latency) Observe(d time.Duration) {
	i := 0
	for i < len(CommitBuckets) && d > CommitBuckets[i] {
		i++
	}
	l.counts[i].Add(1)
	l.sum.Add(int64(d))
}

// LatencySnapshot is a reading of a Latency: Cumulative[i] counts the
// observations ≤ CommitBuckets[i].
type LatencySnapshot struct {
	Count      uint64
	Sum        time.Duration
	Cumulative []uint64
}

// Snapshot reads l.
func (l *Latency) Snapshot() LatencySnapshot {
	s := LatencySnapshot{Sum: time.Duration(l.sum.Load()), Cumulative: make([]uint64, len(CommitBuckets))}
	for i := range l.counts {
		s.Count += l.counts[i].Load()
		if i < len(CommitBuckets) {
			s.Cumulative[i] = s.Count
		}
	}
	return s
}

// QueueCounter is implemented by engines that count the unfinished jobs
// per type (both do) from their partial indexes; the server's metrics
// read it for the queue depth by type.
type QueueCounter interface {
	// JobQueueCounts counts queued and running jobs per type and state;
	// types without such jobs are absent.
	JobQueueCounts(ctx context.Context) (map[string]map[model.JobState]int, error)
}

// QueueCountsSQL is the engines' query for JobQueueCounts.
const QueueCountsSQL = `SELECT type, state, COUNT(*) FROM jobs WHERE state IN ('queued', 'running') GROUP BY type, state`
