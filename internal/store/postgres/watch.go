package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dpe-engine/dpe/internal/backoff"
	"github.com/dpe-engine/dpe/internal/clock"
)

// watchBackoff is the pause before reconnecting the listener: doubled per
// failed attempt since the last connection from 100ms up to 5s, jittered
// down to half, so servers restarted together do not reconnect in
// lockstep.
var watchBackoff = backoff.Policy{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.5}

// Timings of WatchJobs.
const (
	// watchIdle is how long the listener waits for a notification before it
	// checks that its connection still works: a network partition can leave
	// a dead socket that would otherwise wait forever.
	watchIdle = 30 * time.Second
	// watchCheckTimeout bounds that check and closing the connection.
	watchCheckTimeout = 5 * time.Second
)

// queuedTypesSQL lists the distinct types of queued jobs by a loose index
// scan of jobs_claim: one index probe per type, however many jobs are
// queued.
const queuedTypesSQL = `
WITH RECURSIVE t(type) AS (
	(SELECT type FROM jobs WHERE state = 'queued' ORDER BY type LIMIT 1)
	UNION ALL
	SELECT (SELECT q.type FROM jobs q WHERE q.state = 'queued' AND q.type > t.type ORDER BY q.type LIMIT 1)
	FROM t WHERE t.type IS NOT NULL
)
SELECT type FROM t WHERE type IS NOT NULL`

// WatchJobs calls fn with a job type each time jobs of that type may have
// become claimable through any server sharing the database, until ctx ends
// or the store is closed; it then returns nil. It listens on a dedicated
// connection (not one of the pool's). When that connection is lost (a
// database restart, a fail-over, a network cut) it reconnects with capped,
// jittered back-off, and after reconnecting calls fn once for every type
// with queued jobs and once with "@instances", since notifications sent
// meanwhile were lost. fn runs on WatchJobs' goroutine and should not
// block.
//
// Besides job types, fn receives "@instances" when workflow instances may
// have become due (created, woken by an event, canceled, released).
func (s *Store) WatchJobs(ctx context.Context, fn func(jobType string)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		// Close ends every watcher: the store no longer serves.
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()

	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "dpe-watch"

	failures := 0 // attempts in a row that did not get as far as listening
	for attempt := 0; ; attempt++ {
		connected, err := s.listen(ctx, cfg, fn, attempt > 0)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			failures = 0
		}
		wait := watchBackoff.Delay(failures)
		failures++
		s.log.Warn("postgres: job notifications interrupted; reconnecting", "error", err, "retry_in", wait)
		if clock.Sleep(ctx, clock.Real{}, wait) != nil {
			return nil
		}
	}
}

// listen runs one LISTEN session until its connection fails or ctx ends. It
// reports whether it got as far as listening. With catchUp it first calls fn
// for every type with queued jobs.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig, fn func(string), catchUp bool) (bool, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), watchCheckTimeout)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+notifyChannel); err != nil {
		return false, err
	}
	if catchUp {
		// After LISTEN, so that nothing falls between the catch-up read and
		// the first notification.
		rows, err := conn.Query(ctx, queuedTypesSQL)
		if err != nil {
			return true, err
		}
		types, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return true, err
		}
		for _, t := range types {
			fn(t)
		}
		// Instances may have become due meanwhile too; workers look again
		// (a spurious wake-up costs one claim that finds nothing).
		fn(instancesPayload)
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, watchIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			fn(n.Payload)
			continue
		case ctx.Err() != nil:
			return true, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// Idle: prove the connection still answers.
			pctx, cancel := context.WithTimeout(ctx, watchCheckTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err == nil {
				continue
			}
		}
		return true, err
	}
}
