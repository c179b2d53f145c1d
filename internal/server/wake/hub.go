// Package wake lets long-polling requests sleep until something they wait
// for may have happened: jobs of a type became claimable, an instance needs
// a worker. Signals come from this server's own writes and, on engines that
// can, from other servers (LISTEN/NOTIFY). A signal is only a hint: the
// woken request runs its query again.
package wake

import (
	"context"
	"sync"
	"time"
)

// Instances is the key signalled when workflow instances need attention.
const Instances = "@instances"

// Hub dispatches signals to waiters by key.
type Hub struct {
	mu      sync.Mutex
	waiters map[string]map[*waiter]struct{}
	closing chan struct{}
	once    sync.Once
}

type waiter struct {
	ch   chan struct{} // buffered 1: a signal is never lost between register and wait
	keys []string
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{waiters: make(map[string]map[*waiter]struct{}), closing: make(chan struct{})}
}

func (h *Hub) register(keys []string) *waiter {
	w := &waiter{ch: make(chan struct{}, 1), keys: keys}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range keys {
		m := h.waiters[k]
		if m == nil {
			m = make(map[*waiter]struct{})
			h.waiters[k] = m
		}
		m[w] = struct{}{}
	}
	return w
}

func (h *Hub) unregister(w *waiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range w.keys {
		if m := h.waiters[k]; m != nil {
			delete(m, w)
			if len(m) == 0 {
				delete(h.waiters, k)
			}
		}
	}
}

// Signal wakes every waiter of the key.
func (h *Hub) Signal(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.waiters[key] {
		select {
		case w.ch <- struct{}{}:
		default: // already signalled
		}
	}
}

// Close makes every current and future Poll return at once (a server
// draining hands its long-polls back).
func (h *Hub) Close() {
	h.once.Do(func() { close(h.closing) })
}

// Poll calls try until it reports done, wait has passed, ctx ends or the
// hub closes. Between calls it sleeps until a key is signalled or tick
// passes (the tick catches what no signal announces, such as a back-off
// ending). It registers before each try, so a signal between try and the
// sleep is not lost.
func (h *Hub) Poll(ctx context.Context, keys []string, wait, tick time.Duration, try func() (bool, error)) error {
	deadline := time.Now().Add(wait)
	for {
		w := h.register(keys)
		done, err := try()
		if err != nil || done {
			h.unregister(w)
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			h.unregister(w)
			return nil
		}
		timer := time.NewTimer(min(left, tick))
		select {
		case <-w.ch:
		case <-timer.C:
		case <-ctx.Done():
		case <-h.closing:
		}
		timer.Stop()
		h.unregister(w)
		if err := ctx.Err(); err != nil {
			return err
		}
		select {
		case <-h.closing:
			return nil
		default:
		}
	}
}
