package scheduler

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// stepClock answers every wait at once, moving its time forward.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Stopwatch measures the fake time.
func (c *stepClock) Stopwatch() func() time.Duration {
	start := c.Now()
	return func() time.Duration { return c.Now().Sub(start) }
}

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

func TestApprove(t *testing.T) {
	type answer struct {
		status int
		body   string
	}
	tests := []struct {
		name    string
		answers []answer // one per attempt; the last repeats
		timeout time.Duration
		ok      bool
		reason  string
		asked   int
	}{
		{"empty 200", []answer{{200, ""}}, 0, true, "", 1},
		{"yes", []answer{{200, "yes"}}, 0, true, "", 1},
		{"True with newline", []answer{{200, "True\n"}}, 0, true, "", 1},
		{"ok, json string", []answer{{200, `"ok"`}}, 0, true, "", 1},
		{"204", []answer{{204, ""}}, 0, true, "", 1},
		{"no", []answer{{200, "no: maintenance window"}}, 0, false, ReasonApprovalNo, 1},
		{"false", []answer{{200, "FALSE"}}, 0, false, ReasonApprovalNo, 1},
		{"403", []answer{{403, "yes"}}, 0, false, ReasonApprovalNo, 1},
		{"409", []answer{{409, ""}}, 0, false, ReasonApprovalNo, 1},
		{"unrecognised", []answer{{200, "yesterday"}}, 0, false, `approval failed: unrecognised answer "yesterday"`, 1},
		{"404 not retried", []answer{{404, "no such gate"}}, 0, false, "approval failed: 404 Not Found", 1},
		{"503 then yes", []answer{{503, ""}, {200, "yes"}}, 0, true, "", 2},
		{"429 twice then no", []answer{{429, ""}, {429, ""}, {200, "no"}}, 0, false, ReasonApprovalNo, 3},
		{"500 thrice", []answer{{500, ""}}, 0, false, "approval failed: 500 Internal Server Error (3 attempts)", 3},
		{"timeout leaves room for two", []answer{{502, ""}}, 500 * time.Millisecond, false, "approval failed: 502 Bad Gateway (2 attempts)", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			n := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("fire_time") != "2026-11-25T00:00:00Z" || r.URL.Query().Get("schedule") != "s" || r.URL.Query().Get("k") != "v" {
					t.Errorf("query %q", r.URL.RawQuery)
				}
				mu.Lock()
				a := tt.answers[min(n, len(tt.answers)-1)]
				n++
				mu.Unlock()
				w.WriteHeader(a.status)
				_, _ = w.Write([]byte(a.body))
			}))
			defer srv.Close()
			ap := &approver{hc: srv.Client(), clock: &stepClock{now: t0}}
			timeout := tt.timeout
			if timeout == 0 {
				timeout = DefaultApprovalTimeout
			}
			ok, reason, err := ap.approve(context.Background(), &Approval{URL: srv.URL + "/gate?k=v", Timeout: timeout}, "s", t0)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.ok || reason != tt.reason {
				t.Errorf("approve = %v %q, want %v %q", ok, reason, tt.ok, tt.reason)
			}
			if n != tt.asked {
				t.Errorf("asked %d times, want %d", n, tt.asked)
			}
		})
	}
}

func TestApproveUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/gate?token=s3cret"
	srv.Close() // nothing listens there now
	ap := &approver{hc: &http.Client{}, clock: &stepClock{now: t0}}
	ok, reason, err := ap.approve(context.Background(), &Approval{URL: url, Timeout: time.Second}, "s", t0)
	if err != nil || ok {
		t.Fatalf("approve = %v %q %v", ok, reason, err)
	}
	if !strings.HasPrefix(reason, "approval failed: ") || !strings.Contains(reason, "connection refused") || !strings.HasSuffix(reason, "(3 attempts)") {
		t.Errorf("reason %q", reason)
	}
	if strings.Contains(reason, "s3cret") {
		t.Errorf("reason %q leaks the URL's query", reason)
	}
}

func TestApproveCancelledRecordsNothing(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(503) }))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ap := &approver{hc: srv.Client(), clock: &stepClock{now: t0}}
	if _, _, err := ap.approve(ctx, &Approval{URL: srv.URL, Timeout: time.Second}, "s", t0); err == nil {
		t.Error("a cancelled question gave a verdict")
	}
}
