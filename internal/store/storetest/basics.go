package storetest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
)

// testStore covers Ping, Close, Capabilities and WatchJobs.
func testStore(t *testing.T, open Opener) {
	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping on a fresh store: %v", err)
		}
	})

	t.Run("CloseTwice", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		// The engine's cleanup closes it a third time.
	})

	t.Run("UseAfterCloseIsUnavailable", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		wantErr(t, "Ping after Close", s.Ping(t.Context()), model.ErrUnavailable)
		_, err := s.JobGet(t.Context(), 1)
		wantErr(t, "JobGet after Close", err, model.ErrUnavailable)
	})

	t.Run("WatchJobs", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		if !s.Capabilities().Notify {
			// Must return at once, even with a context that never ends.
			done := make(chan error, 1)
			go func() { done <- s.WatchJobs(context.Background(), func(string) {}) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("WatchJobs without Notify: %v, want nil", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("WatchJobs without Notify did not return at once")
			}
			return
		}
		ctx, stop := context.WithCancel(t.Context())
		var seen atomic.Bool
		done := make(chan error, 1)
		go func() {
			done <- s.WatchJobs(ctx, func(typ string) {
				if typ == "watch.me" {
					seen.Store(true)
				}
			})
		}()
		// The listener may not be set up yet when the first insert commits:
		// keep inserting until a notification arrives or the deadline passes.
		deadline := time.Now().Add(10 * time.Second)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for !seen.Load() {
			if time.Now().After(deadline) {
				t.Fatal("WatchJobs: no notification for an inserted job within 10s")
			}
			insert(t, s, T0, model.JobSpec{Type: "watch.me"})
			<-tick.C
		}
		stop()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("WatchJobs did not return after its context ended")
		}
	})
}
