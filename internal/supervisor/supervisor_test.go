package supervisor

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

var (
	errBoom = errors.New("boom")
	errStop = errors.New("stop went wrong")
)

// readiness says when a fake role is ready.
type readiness int

const (
	readyAtOnce readiness = iota // no Ready channel
	readySelf                    // closes Ready right after recording its start
	readyNever                   // has a Ready channel that is never closed
)

// stopping says what a fake role does once told to stop.
type stopping int

const (
	stopClean    stopping = iota // returns nil
	stopCanceled                 // returns ctx.Err()
	stopFailing                  // returns errStop
	stopHanging                  // returns only when the test ends
)

// spec describes one fake role.
type spec struct {
	name  string
	ready readiness
	stop  stopping
}

// harness runs fake roles and records what they do, in order.
type harness struct {
	t       *testing.T
	cancel  context.CancelFunc
	mu      sync.Mutex
	events  []string
	exit    map[string]chan error // send to end a role by itself
	release chan struct{}         // closed at the end: hanging roles return
	logs    bytes.Buffer
	logMu   sync.Mutex
}

func (h *harness) record(ev string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, ev)
}

func (h *harness) recorded() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

// Write makes the harness the log sink (slog writes each record at once).
func (h *harness) Write(p []byte) (int, error) {
	h.logMu.Lock()
	defer h.logMu.Unlock()
	return h.logs.Write(p)
}

// end makes role name return err by itself.
func (h *harness) end(name string, err error) {
	h.t.Helper()
	h.exit[name] <- err
}

// settle waits until every goroutine is blocked, then checks the events
// so far.
func (h *harness) settle(want ...string) {
	h.t.Helper()
	synctest.Wait()
	if got := h.recorded(); !slices.Equal(got, want) {
		h.t.Fatalf("events so far:\n got %q\nwant %q", got, want)
	}
}

func (h *harness) role(s spec) Role {
	exit := make(chan error, 1)
	h.exit[s.name] = exit
	var ready chan struct{}
	if s.ready != readyAtOnce {
		ready = make(chan struct{})
	}
	r := Role{Name: s.name, Ready: ready}
	r.Run = func(ctx context.Context) error {
		h.record("start " + s.name)
		if s.ready == readySelf {
			close(ready)
		}
		select {
		case err := <-exit:
			h.record("end " + s.name)
			return err
		case <-ctx.Done():
		}
		switch s.stop {
		case stopCanceled:
			h.record("stop " + s.name)
			return ctx.Err()
		case stopFailing:
			h.record("stop " + s.name)
			return errStop
		case stopHanging:
			<-h.release
			return nil
		default:
			h.record("stop " + s.name)
			return nil
		}
	}
	return r
}

func TestRun(t *testing.T) {
	abc := []spec{{"a", readySelf, stopClean}, {"b", readySelf, stopClean}, {"c", readySelf, stopClean}}
	tests := []struct {
		name  string
		roles []spec
		drive func(h *harness) // acts on the running roles; nil: cancel once all started
		want  []string         // every event, in order
		err   error            // errors.Is target; nil: want nil
		log   string           // a line the log must hold
	}{
		{
			name:  "starts in order and stops in reverse on cancel",
			roles: abc,
			want:  []string{"start a", "start b", "start c", "stop c", "stop b", "stop a"},
		},
		{
			name:  "a role returning context.Canceled once told to stop is clean",
			roles: []spec{{"a", readySelf, stopCanceled}, {"b", readySelf, stopCanceled}},
			want:  []string{"start a", "start b", "stop b", "stop a"},
		},
		{
			name:  "waits for ready before starting the next",
			roles: []spec{{"a", readyNever, stopClean}, {"b", readySelf, stopClean}},
			drive: func(h *harness) {
				h.settle("start a") // b waits for a forever
				h.cancel()
			},
			want: []string{"start a", "stop a"},
		},
		{
			name:  "cancel during start stops the started roles in reverse",
			roles: []spec{{"a", readySelf, stopClean}, {"b", readyNever, stopClean}, {"c", readySelf, stopClean}},
			drive: func(h *harness) {
				h.settle("start a", "start b")
				h.cancel()
			},
			want: []string{"start a", "start b", "stop b", "stop a"},
		},
		{
			name:  "the first failure stops the rest in reverse and is returned",
			roles: abc,
			drive: func(h *harness) {
				h.settle("start a", "start b", "start c")
				h.end("b", errBoom)
			},
			want: []string{"start a", "start b", "start c", "end b", "stop c", "stop a"},
			err:  errBoom,
			log:  "role failed",
		},
		{
			name:  "a failure while waiting for ready stops the started roles",
			roles: []spec{{"a", readySelf, stopClean}, {"b", readyNever, stopClean}, {"c", readySelf, stopClean}},
			drive: func(h *harness) {
				h.settle("start a", "start b")
				h.end("a", errBoom)
			},
			want: []string{"start a", "start b", "end a", "stop b"},
			err:  errBoom,
		},
		{
			name:  "a role ending with nil lets the others run",
			roles: abc,
			drive: func(h *harness) {
				h.settle("start a", "start b", "start c")
				h.end("b", nil)
				h.settle("start a", "start b", "start c", "end b")
				h.cancel()
			},
			want: []string{"start a", "start b", "start c", "end b", "stop c", "stop a"},
		},
		{
			name:  "a role done before it was ready lets the next start",
			roles: []spec{{"a", readyNever, stopClean}, {"b", readySelf, stopClean}},
			drive: func(h *harness) {
				h.settle("start a")
				h.end("a", nil)
				h.settle("start a", "end a", "start b")
				h.cancel()
			},
			want: []string{"start a", "end a", "start b", "stop b"},
		},
		{
			name:  "Run returns once every role has ended by itself",
			roles: []spec{{"a", readySelf, stopClean}, {"b", readyAtOnce, stopClean}},
			drive: func(h *harness) {
				h.settle("start a", "start b")
				h.end("b", nil)
				synctest.Wait()
				h.end("a", nil)
			},
			want: []string{"start a", "start b", "end b", "end a"},
		},
		{
			name:  "an error while stopping is returned",
			roles: []spec{{"a", readySelf, stopClean}, {"b", readySelf, stopFailing}},
			want:  []string{"start a", "start b", "stop b", "stop a"},
			err:   errStop,
			log:   "role failed while stopping",
		},
		{
			name:  "a role overrunning its stop timeout is logged and left; the others still stop",
			roles: []spec{{"a", readySelf, stopClean}, {"b", readySelf, stopHanging}, {"c", readySelf, stopClean}},
			want:  []string{"start a", "start b", "start c", "stop c", "stop a"},
			err:   ErrStopTimeout,
			log:   "role did not stop in time",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				h := &harness{t: t, cancel: cancel, exit: map[string]chan error{}, release: make(chan struct{})}
				t.Cleanup(func() { close(h.release) })
				roles := make([]Role, len(tc.roles))
				for i, s := range tc.roles {
					roles[i] = h.role(s)
				}
				log := slog.New(slog.NewTextHandler(h, &slog.HandlerOptions{Level: slog.LevelDebug}))
				res := make(chan error, 1)
				start := time.Now()
				go func() { res <- Run(ctx, Config{Log: log, StopTimeout: 5 * time.Second}, roles...) }()
				if tc.drive != nil {
					tc.drive(h)
				} else {
					synctest.Wait()
					cancel()
				}
				err := <-res
				if got := h.recorded(); !slices.Equal(got, tc.want) {
					t.Errorf("events:\n got %q\nwant %q", got, tc.want)
				}
				switch {
				case tc.err == nil && err != nil:
					t.Errorf("Run: %v, want nil", err)
				case tc.err != nil && !errors.Is(err, tc.err):
					t.Errorf("Run: %v, want %v", err, tc.err)
				}
				h.logMu.Lock()
				logs := h.logs.String()
				h.logMu.Unlock()
				if tc.log != "" && !strings.Contains(logs, tc.log) {
					t.Errorf("log lacks %q:\n%s", tc.log, logs)
				}
				if tc.err == ErrStopTimeout {
					// The fake clock ran exactly the timeout: the supervisor
					// waited for the hanging role, and no longer.
					if d := time.Since(start); d != 5*time.Second {
						t.Errorf("stop took %v, want the 5s stop timeout", d)
					}
				}
			})
		})
	}
}

func TestStep(t *testing.T) {
	tests := []struct {
		name string
		err  error // the step's result
		want []string
	}{
		{"the next role waits for the step", nil, []string{"step begins", "step done", "start b", "stop b"}},
		{"a failing step stops the roles before it", errBoom, []string{"step begins", "step done", "stop a"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithCancel(t.Context())
				h := &harness{t: t, cancel: cancel, exit: map[string]chan error{}, release: make(chan struct{})}
				proceed := make(chan struct{})
				step := Step("step", func(context.Context) error {
					h.record("step begins")
					<-proceed
					h.record("step done")
					return tc.err
				})
				a := h.role(spec{"a", readySelf, stopClean})
				b := h.role(spec{"b", readySelf, stopClean})
				res := make(chan error, 1)
				go func() { res <- Run(ctx, Config{}, a, step, b) }()
				h.settle("start a", "step begins")
				close(proceed)
				if tc.err == nil {
					h.settle("start a", "step begins", "step done", "start b")
					cancel()
				}
				if err := <-res; !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
					t.Errorf("Run: %v, want %v", err, tc.err)
				}
				want := append([]string{"start a"}, tc.want...)
				if tc.err == nil {
					want = append(want, "stop a")
				}
				if got := h.recorded(); !slices.Equal(got, want) {
					t.Errorf("events:\n got %q\nwant %q", got, want)
				}
			})
		})
	}
}

func TestRunRefusesRoleWithoutRun(t *testing.T) {
	ran := false
	err := Run(t.Context(), Config{},
		Role{Name: "a", Run: func(context.Context) error { ran = true; return nil }},
		Role{Name: "b"})
	if err == nil || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("Run: %v, want an error naming role b", err)
	}
	if ran {
		t.Error("role a ran although the roles were refused")
	}
}

func TestRoleStopTimeoutOverridesConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		ctx, cancel := context.WithCancel(t.Context())
		res := make(chan error, 1)
		start := time.Now()
		go func() {
			res <- Run(ctx, Config{StopTimeout: time.Hour}, Role{
				Name:        "slow",
				StopTimeout: 3 * time.Second,
				Run: func(ctx context.Context) error {
					<-ctx.Done()
					<-release
					return nil
				},
			})
		}()
		synctest.Wait()
		cancel()
		if err := <-res; !errors.Is(err, ErrStopTimeout) || !strings.Contains(err.Error(), "slow") {
			t.Errorf("Run: %v, want ErrStopTimeout naming the role", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("stop took %v, want the role's 3s", d)
		}
	})
}

func TestRoleKeepsContextValues(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(t.Context(), key{}, "v")
	var got any
	err := Run(ctx, Config{}, Role{Name: "a", Run: func(ctx context.Context) error {
		got = ctx.Value(key{})
		return nil
	}})
	if err != nil || got != "v" {
		t.Errorf("Run: %v, value %v; want nil and v", err, got)
	}
}
