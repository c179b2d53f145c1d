package client

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock advances only when the client sleeps, and records each sleep.
// With block set, sleeps never end; each one is announced on sleeping.
type fakeClock struct {
	mu       sync.Mutex
	now      time.Time
	sleeps   []time.Duration
	block    bool
	sleeping chan time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now(), sleeping: make(chan time.Duration, 100)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Stopwatch measures the fake time.
func (f *fakeClock) Stopwatch() func() time.Duration {
	start := f.Now()
	return func() time.Duration { return f.Now().Sub(start) }
}

func (f *fakeClock) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	ch := make(chan time.Time, 1)
	if f.block {
		f.sleeping <- d
		return ch
	}
	f.now = f.now.Add(d)
	ch <- f.now
	return ch
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// setup returns a client on urls with a fake clock and no jitter (each
// back-off is its ceiling), closed when the test ends.
func setup(t *testing.T, cfg Config) (*Client, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	if cfg.Clock == nil {
		cfg.Clock = clk
	}
	cfg.Jitter = func(d time.Duration) time.Duration { return d }
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, clk
}

// server starts an httptest server running h, closed when the test ends.
func server(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

// closedURL returns the URL of a port nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeProblem(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func TestNewValidatesURLs(t *testing.T) {
	for _, bad := range [][]string{nil, {""}, {"ftp://x"}, {"http://"}, {"http://a?x=1"}, {"http://u:p@a"}} {
		if _, err := New(Config{URLs: bad}); err == nil {
			t.Errorf("New(%q): no error", bad)
		}
	}
	c, err := New(Config{URLs: []string{"http://a:8460/", " https://lb/dpe/ "}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := c.URLs()
	if got[0] != "http://a:8460" || got[1] != "https://lb/dpe" {
		t.Errorf("URLs = %q", got)
	}
	if _, err := New(Config{URLs: []string{"http://a"}, Deadline: -1}); err == nil {
		t.Error("negative deadline: no error")
	}
}

func TestTokenAndHeaders(t *testing.T) {
	var got http.Header
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.WriteHeader(http.StatusNoContent)
	})
	c, _ := setup(t, Config{URLs: []string{url}, Token: "s3cret"})
	if err := c.do(t.Context(), http.MethodGet, "/v1/x", nil, nil); err != nil {
		t.Fatal(err)
	}
	if got.Get("Authorization") != "Bearer s3cret" {
		t.Errorf("Authorization = %q", got.Get("Authorization"))
	}
	if got.Get("Idempotency-Key") != "" {
		t.Errorf("GET carries Idempotency-Key %q", got.Get("Idempotency-Key"))
	}
	if err := c.do(t.Context(), http.MethodPut, "/v1/x", map[string]int{"a": 1}, nil); err != nil {
		t.Fatal(err)
	}
	if k := got.Get("Idempotency-Key"); len(k) != 32 {
		t.Errorf("PUT Idempotency-Key = %q, want 32 hex digits", k)
	}
	if got.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type = %q", got.Get("Content-Type"))
	}
}
