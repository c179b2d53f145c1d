package folderwatcher

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// With a poll of an hour, only a notification (and the due time of the
// waiting file) can make the watcher see a new file within seconds.
func TestNotificationBringsPollForward(t *testing.T) {
	probe, err := fsnotify.NewWatcher()
	if err != nil {
		t.Skipf("no notifications here: %v", err)
	}
	_ = probe.Close()
	srv := newFakeServer(t)
	dir := t.TempDir()
	c := testConfig(dir)
	c.Poll, c.StableFor = time.Hour, 20*time.Millisecond
	w, err := New(Options{Client: newClient(t, srv.srv.URL), Watchers: []Config{c}, Log: testLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	// Wait for the first pass, so the directory is watched.
	select {
	case <-srv.pageCh:
	case <-time.After(10 * time.Second):
		t.Fatal("no first pass within 10s")
	}
	if err := os.WriteFile(filepath.Join(dir, "new.wav"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-srv.startedCh:
		if ev != "created new.wav" {
			t.Fatalf("event %q", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s: notifications did not bring the poll forward")
	}
}

func TestNotifierRelevant(t *testing.T) {
	n := &notifier{root: "/in", match: newMatcher([]string{"*.wav"}, []string{"*.part"}), marker: ".done"}
	for _, tc := range []struct {
		ev   fsnotify.Event
		want bool
	}{
		{fsnotify.Event{Name: "/in/a.wav", Op: fsnotify.Write}, true},
		{fsnotify.Event{Name: "/in/a.wav.part", Op: fsnotify.Write}, false},
		{fsnotify.Event{Name: "/in/a.txt", Op: fsnotify.Write}, false},
		{fsnotify.Event{Name: "/in/a.wav.done", Op: fsnotify.Write}, true},
		{fsnotify.Event{Name: "/in/a.wav", Op: fsnotify.Chmod}, false},
		{fsnotify.Event{Name: "/in/sub", Op: fsnotify.Create}, true},
		{fsnotify.Event{Name: "/in/a.wav.part", Op: fsnotify.Rename}, true},
	} {
		if got := n.relevant(tc.ev); got != tc.want {
			t.Errorf("relevant(%v) = %v, want %v", tc.ev, got, tc.want)
		}
	}
}
