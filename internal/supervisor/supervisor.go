// Package supervisor runs the roles of one dpe process (server, processor,
// worker, scheduler, folder and table watchers) as a unit.
//
// Roles start in the order given, each only once the one before is ready.
// When the context ends, or a role fails, the roles stop in reverse order,
// each after the one started after it has returned, so a role never loses
// what it depends on while it drains (the processor gives its jobs back
// through the server before the server closes). Each role has a bounded
// time to stop; a role that overruns it is logged and left behind so the
// others still stop.
//
// The supervisor does not watch signals itself: the caller's context is
// cancelled on SIGINT or SIGTERM (cmd/dpe does so), which starts the stop.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DefaultStopTimeout is how long a role may take to return once told to
// stop, when neither the role nor the Config says otherwise.
const DefaultStopTimeout = time.Minute

// ErrStopTimeout is wrapped in the error returned for a role that did not
// return within its stop timeout.
var ErrStopTimeout = errors.New("did not stop in time")

// Role is one long-running part of a process.
type Role struct {
	// Name names the role in logs and in stop-timeout errors.
	Name string
	// Run does the role's work until ctx is cancelled, then stops cleanly
	// and returns nil. An error is a failure: the other roles are stopped
	// and the error is returned by Run. Returning nil before ctx is
	// cancelled means the role is done (a one-shot set-up step); the
	// other roles go on. ctx carries the values of the context given to
	// the supervisor but not its cancellation: each role is cancelled in
	// its turn.
	Run func(ctx context.Context) error
	// Ready, when not nil, is closed once the role serves; the next role
	// starts only then, or once Run has returned nil. A nil Ready means
	// the role is ready as soon as Run is started.
	Ready <-chan struct{}
	// StopTimeout bounds how long Run may take to return once its context
	// is cancelled; zero means Config.StopTimeout.
	StopTimeout time.Duration
}

// Step is a one-shot role: a set-up step (importing templates, printing
// where the process listens) that the roles after it wait for. It is ready
// once do has returned nil; an error from do is a failure like any other.
func Step(name string, do func(ctx context.Context) error) Role {
	ready := make(chan struct{})
	return Role{Name: name, Ready: ready, Run: func(ctx context.Context) error {
		if err := do(ctx); err != nil {
			return err
		}
		close(ready)
		return nil
	}}
}

// Config tunes a supervision.
type Config struct {
	// Log receives start, stop and failure events; nil discards them.
	Log *slog.Logger
	// StopTimeout is the stop timeout of roles that set none; zero means
	// DefaultStopTimeout.
	StopTimeout time.Duration
}

// Run starts roles in order and returns once they have all stopped.
//
// Each role starts after the previous one is ready. Run stops the started
// roles in reverse order when ctx is cancelled (also during the start),
// when a role fails, or returns once every role has ended by itself. It
// returns nil after a clean stop; otherwise the first failure, joined with
// the errors of roles that failed while stopping and of those that
// overran their stop timeout. A role that returns context.Canceled once
// told to stop has stopped cleanly.
func Run(ctx context.Context, cfg Config, roles ...Role) error {
	for i, r := range roles {
		if r.Run == nil {
			return fmt.Errorf("supervisor: role %d (%q) has no Run", i, r.Name)
		}
	}
	s := &supervision{
		log:     cfg.Log,
		timeout: cfg.StopTimeout,
		exits:   make(chan *running, len(roles)),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.timeout <= 0 {
		s.timeout = DefaultStopTimeout
	}
	s.start(ctx, roles)
	if s.failure == nil {
		s.watch(ctx)
	}
	return s.stop()
}

// running is a started role.
type running struct {
	Role
	cancel context.CancelFunc
	done   chan struct{} // closed once Run has returned
	err    error         // Run's result; read only after done is closed
	seen   bool          // the supervisor has taken note of its end
}

// supervision is the state of one call of Run; it is used by that call's
// goroutine only (the roles talk to it through channels).
type supervision struct {
	log     *slog.Logger
	timeout time.Duration
	exits   chan *running // a role whose Run returned
	started []*running
	failure error // the first role failure
}

// start launches the roles in order, waiting for each to be ready. It
// returns early on cancellation or on a failure.
func (s *supervision) start(ctx context.Context, roles []Role) {
	for _, r := range roles {
		if ctx.Err() != nil {
			return
		}
		me := s.launch(ctx, r)
		ready := r.Ready
		for ready != nil {
			select {
			case <-ready:
				ready = nil
				s.log.Debug("role ready", "role", r.Name)
			case x := <-s.exits:
				s.ended(x)
				if s.failure != nil {
					return
				}
				if x == me {
					ready = nil // a role that is done needs no more waiting for
				}
			case <-ctx.Done():
				return
			}
		}
	}
}

// launch starts one role in its own goroutine.
func (s *supervision) launch(ctx context.Context, r Role) *running {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	x := &running{Role: r, cancel: cancel, done: make(chan struct{})}
	s.started = append(s.started, x)
	s.log.Debug("role starting", "role", r.Name)
	go func() {
		x.err = x.Run(rctx)
		close(x.done)
		s.exits <- x // buffered for every role: never blocks
	}()
	return x
}

// watch waits, once all roles are started, until ctx is cancelled, a role
// fails or every role has ended.
func (s *supervision) watch(ctx context.Context) {
	live := 0
	for _, x := range s.started {
		if !x.seen {
			live++
		}
	}
	for ; live > 0; live-- {
		select {
		case x := <-s.exits:
			s.ended(x)
			if s.failure != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// ended takes note of a role that returned before it was told to stop.
func (s *supervision) ended(x *running) {
	x.seen = true
	if x.err == nil {
		s.log.Debug("role done", "role", x.Name)
		return
	}
	if len(s.started) > 1 {
		// Alone, the role's error speaks for itself where Run returns it.
		s.log.Error("role failed; stopping the others", "role", x.Name, "err", x.err)
	}
	if s.failure == nil {
		s.failure = x.err
	}
}

// stop cancels the started roles that are still running, last started
// first, waiting for each in turn up to its stop timeout.
func (s *supervision) stop() error {
	var errs []error
	if s.failure != nil {
		errs = append(errs, s.failure)
	}
	for i := len(s.started) - 1; i >= 0; i-- {
		x := s.started[i]
		if x.seen {
			continue
		}
		timeout := x.StopTimeout
		if timeout <= 0 {
			timeout = s.timeout
		}
		s.log.Debug("stopping role", "role", x.Name, "timeout", timeout)
		x.cancel()
		timer := time.NewTimer(timeout)
		select {
		case <-x.done:
			timer.Stop()
			if x.err != nil && !errors.Is(x.err, context.Canceled) {
				s.log.Error("role failed while stopping", "role", x.Name, "err", x.err)
				errs = append(errs, x.err)
			} else {
				s.log.Debug("role stopped", "role", x.Name)
			}
		case <-timer.C:
			s.log.Error("role did not stop in time; leaving it behind", "role", x.Name, "timeout", timeout)
			errs = append(errs, fmt.Errorf("%s: %w after %v", x.Name, ErrStopTimeout, timeout))
		}
	}
	if len(errs) == 1 {
		return errs[0] // as the role returned it, so its message stays the same
	}
	return errors.Join(errs...)
}
