package client

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

func TestDeadServerAmongSeveralNeverFails(t *testing.T) {
	var hits atomic.Int32
	live := server(t, func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeJSON(w, http.StatusOK, model.Job{ID: 7})
	})
	for _, urls := range [][]string{
		{closedURL(t), live},
		{live, closedURL(t)},
		{closedURL(t), closedURL(t), live},
	} {
		c, clk := setup(t, Config{URLs: urls})
		for i := range 10 {
			j, err := c.GetJob(t.Context(), 7)
			if err != nil {
				t.Fatalf("%v call %d: %v", urls, i, err)
			}
			if j.ID != 7 {
				t.Fatalf("job %d", j.ID)
			}
			if _, err := c.SubmitJob(t.Context(), model.JobSpec{Type: "noop"}); err != nil {
				t.Fatalf("%v submit %d: %v", urls, i, err)
			}
		}
		if s := clk.Sleeps(); len(s) != 0 {
			t.Errorf("%v: slept %v; a live URL should be found within one round", urls, s)
		}
	}
}

func TestStickToTheURLThatWorked(t *testing.T) {
	var a, b atomic.Int32
	ua := server(t, func(w http.ResponseWriter, r *http.Request) {
		a.Add(1)
		writeProblem(w, http.StatusServiceUnavailable, `{"title":"db down","status":503}`)
	})
	ub := server(t, func(w http.ResponseWriter, r *http.Request) {
		b.Add(1)
		w.WriteHeader(http.StatusNoContent)
	})
	c, _ := setup(t, Config{URLs: []string{ua, ub}})
	for range 5 {
		if err := c.do(t.Context(), http.MethodGet, "/v1/status", nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	if a.Load() != 1 || b.Load() != 5 {
		t.Errorf("hits a=%d b=%d, want 1 and 5", a.Load(), b.Load())
	}
}

func TestRetry503KeepsIdempotencyKeyAndBody(t *testing.T) {
	var (
		mu     sync.Mutex
		keys   []string
		bodies []string
	)
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		bodies = append(bodies, string(b))
		n := len(keys)
		mu.Unlock()
		if n <= 2 {
			writeProblem(w, http.StatusServiceUnavailable, `{"title":"Service Unavailable","status":503,"detail":"core db unreachable"}`)
			return
		}
		writeJSON(w, http.StatusCreated, model.Job{ID: 42, Type: "noop"})
	})
	c, clk := setup(t, Config{URLs: []string{url}})
	var status int
	j, err := c.SubmitJob(t.Context(), model.JobSpec{Type: "noop", Priority: 5}, WithStatus(&status))
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != 42 || status != http.StatusCreated {
		t.Errorf("job %d status %d", j.ID, status)
	}
	if len(keys) != 3 {
		t.Fatalf("%d attempts, want 3", len(keys))
	}
	if keys[0] == "" || keys[1] != keys[0] || keys[2] != keys[0] {
		t.Errorf("keys %q: want one key on all attempts", keys)
	}
	if bodies[0] == "" || bodies[1] != bodies[0] || bodies[2] != bodies[0] {
		t.Errorf("bodies %q: want the same body on all attempts", bodies)
	}
	if got, want := clk.Sleeps(), []time.Duration{50 * time.Millisecond, 100 * time.Millisecond}; !slices.Equal(got, want) {
		t.Errorf("sleeps %v, want %v", got, want)
	}

	// A caller-chosen key is used as is.
	keys = nil
	if _, err := c.SubmitJob(t.Context(), model.JobSpec{Type: "noop"}, WithIdempotencyKey("k-1")); err != nil {
		t.Fatal(err)
	}
	if keys[0] != "k-1" {
		t.Errorf("key %q, want k-1", keys[0])
	}
}

func TestErrorAnswersAreNotRetried(t *testing.T) {
	cases := []struct {
		status  int
		body    string
		is      error
		field   string
		message string
	}{
		{400, `{"title":"Bad Request","status":400,"detail":"unknown job type","field":"jobs[2].type"}`,
			model.ErrInvalid, "jobs[2].type", "400 Bad Request: jobs[2].type: unknown job type"},
		{422, `{"title":"Unprocessable","status":422}`, model.ErrInvalid, "", "422 Unprocessable"},
		{404, `{"title":"Not Found","status":404,"detail":"job 9"}`, model.ErrNotFound, "", "404 Not Found: job 9"},
		{409, `{"title":"Conflict","status":409,"detail":"stale epoch"}`, model.ErrConflict, "", "409 Conflict: stale epoch"},
		{500, `{"title":"Internal Server Error","status":500}`, nil, "", "500 Internal Server Error"},
		{401, `not json`, nil, "", "401 Unauthorized: not json"},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			var hits atomic.Int32
			url := server(t, func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				writeProblem(w, tc.status, tc.body)
			})
			c, clk := setup(t, Config{URLs: []string{url}})
			_, err := c.SubmitJob(t.Context(), model.JobSpec{Type: "x"})
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err %v (%T), want *APIError", err, err)
			}
			if hits.Load() != 1 || len(clk.Sleeps()) != 0 {
				t.Errorf("%d attempts, %d sleeps; want no retry", hits.Load(), len(clk.Sleeps()))
			}
			if ae.Status != tc.status || ae.Problem.Field != tc.field {
				t.Errorf("status %d field %q", ae.Status, ae.Problem.Field)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("errors.Is(%v, %v) false", err, tc.is)
			}
			for _, s := range []error{model.ErrInvalid, model.ErrNotFound, model.ErrConflict, model.ErrUnavailable} {
				if s != tc.is && errors.Is(err, s) {
					t.Errorf("errors.Is(%v, %v) true", err, s)
				}
			}
			if !strings.Contains(err.Error(), tc.message) || !strings.HasPrefix(err.Error(), "POST /v1/jobs: ") {
				t.Errorf("message %q, want it to contain %q", err, tc.message)
			}
		})
	}
}

func TestDeadlineGivesUpWithClearError(t *testing.T) {
	var hits atomic.Int32
	fail := func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		writeProblem(w, http.StatusServiceUnavailable, `{"title":"Service Unavailable","status":503}`)
	}
	u1, u2 := server(t, fail), server(t, fail)
	c, clk := setup(t, Config{URLs: []string{u1, u2}, Deadline: time.Second})
	_, err := c.Claim(t.Context(), model.ClaimRequest{Processor: "p", Slots: map[string]int{"noop": 1}})
	var re *RetryError
	if !errors.As(err, &re) {
		t.Fatalf("err %v (%T), want *RetryError", err, err)
	}
	// Rounds of two attempts, sleeping 50, 100, 200, 400ms between them
	// (750ms); the next sleep (800ms) would pass the 1s deadline.
	if re.Attempts != 10 || int(hits.Load()) != re.Attempts {
		t.Errorf("attempts %d, server hits %d, want 10", re.Attempts, hits.Load())
	}
	if len(clk.Sleeps()) != 4 || re.Elapsed != 750*time.Millisecond {
		t.Errorf("sleeps %v elapsed %v", clk.Sleeps(), re.Elapsed)
	}
	msg := err.Error()
	for _, want := range []string{"POST /v1/claims", "gave up after 10 attempts over 750ms", u1, u2, "503"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message %q lacks %q", msg, want)
		}
	}
	if !errors.Is(err, model.ErrUnavailable) {
		t.Error("not ErrUnavailable")
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 503 {
		t.Errorf("last error not the 503 APIError: %v", ae)
	}
}

func TestCtxDeadlineBoundsRetries(t *testing.T) {
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	})
	c, _ := setup(t, Config{URLs: []string{url}})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, model.ErrUnavailable) {
		t.Errorf("err %v: want DeadlineExceeded and ErrUnavailable", err)
	}
}

func TestRetryAfterHonouredUpToCap(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   time.Duration
	}{{"1", time.Second}, {"300", 2 * time.Second}, {"", 50 * time.Millisecond}} {
		var hits atomic.Int32
		url := server(t, func(w http.ResponseWriter, r *http.Request) {
			if hits.Add(1) == 1 {
				if tc.header != "" {
					w.Header().Set("Retry-After", tc.header)
				}
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		})
		c, clk := setup(t, Config{URLs: []string{url}})
		if err := c.PutProcessor(t.Context(), model.Processor{ID: "p1"}); err != nil {
			t.Fatal(err)
		}
		if got := clk.Sleeps(); len(got) != 1 || got[0] != tc.want {
			t.Errorf("Retry-After %q: slept %v, want %v", tc.header, got, tc.want)
		}
	}
}

func TestCancelStopsRetriesPromptly(t *testing.T) {
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	clk := newFakeClock()
	clk.block = true
	c, _ := setup(t, Config{URLs: []string{url}, Clock: clk})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-clk.sleeping // the first back-off began
		cancel()
	}()
	start := time.Now()
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, nil)
	if time.Since(start) > 2*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
	var re *RetryError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &re) || re.Attempts != 1 {
		t.Errorf("err %v: want context.Canceled after one attempt", err)
	}

	// A cancel during a hanging attempt ends it too.
	release := make(chan struct{})
	defer close(release)
	hang := server(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	c2, _ := setup(t, Config{URLs: []string{hang}})
	ctx2, cancel2 := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel2)
	start = time.Now()
	err = c2.do(ctx2, http.MethodPost, "/v1/claims", struct{}{}, nil)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Errorf("err %v after %v", err, time.Since(start))
	}
}

func TestAttemptTimeoutIsRetried(t *testing.T) {
	var (
		hits atomic.Int32
		keys sync.Map
	)
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		keys.Store(r.Header.Get("Idempotency-Key"), true)
		if hits.Add(1) == 1 {
			// The server notices a closed connection only once the body
			// is read; then hang until the client gives up the attempt.
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
			return
		}
		writeJSON(w, http.StatusOK, wire.JobList{Jobs: []model.Job{{ID: 1}}})
	})
	c, _ := setup(t, Config{URLs: []string{url}})
	jobs, err := c.Claim(t.Context(), model.ClaimRequest{Processor: "p"}, WithAttemptTimeout(100*time.Millisecond))
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs %v err %v", jobs, err)
	}
	n := 0
	keys.Range(func(any, any) bool { n++; return true })
	if hits.Load() != 2 || n != 1 {
		t.Errorf("hits %d keys %d; want 2 attempts with one key", hits.Load(), n)
	}
}

func TestReadyTriesEachURLOnce(t *testing.T) {
	var down atomic.Int32
	notReady := server(t, func(w http.ResponseWriter, r *http.Request) {
		down.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	ready := server(t, func(w http.ResponseWriter, r *http.Request) {})
	c, clk := setup(t, Config{URLs: []string{notReady, ready}})
	if err := c.Ready(t.Context()); err != nil {
		t.Errorf("Ready: %v", err)
	}
	c2, clk2 := setup(t, Config{URLs: []string{notReady, notReady}})
	err := c2.Ready(t.Context())
	var re *RetryError
	if !errors.As(err, &re) || re.Attempts != 2 {
		t.Errorf("Ready on two unready servers: %v", err)
	}
	if len(clk.Sleeps())+len(clk2.Sleeps()) != 0 {
		t.Error("Ready slept")
	}
}

func TestConcurrentUse(t *testing.T) {
	var n atomic.Int64
	flaky := func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, http.StatusCreated, model.Job{ID: n.Load()})
	}
	c, _ := setup(t, Config{URLs: []string{server(t, flaky), closedURL(t), server(t, flaky)}})
	var wg sync.WaitGroup
	errs := make(chan error, 32*20)
	for range 32 {
		wg.Go(func() {
			for range 20 {
				if _, err := c.SubmitJob(t.Context(), model.JobSpec{Type: "noop"}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestRetryRules(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	cases := []struct {
		name       string
		err        error
		idempotent bool
		want       bool
	}{
		{"dial, not idempotent", dial, false, true},
		{"dns, not idempotent", &net.DNSError{Err: "no such host", Name: "x"}, false, true},
		{"reset, not idempotent", reset, false, false},
		{"reset, idempotent", reset, true, true},
		{"eof, idempotent", fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true, true},
		{"eof, not idempotent", io.EOF, false, false},
		{"timeout, idempotent", context.DeadlineExceeded, true, true},
		{"bad certificate", x509.UnknownAuthorityError{}, true, false},
	}
	for _, tc := range cases {
		if got := retryableTransport(tc.err, tc.idempotent); got != tc.want {
			t.Errorf("%s: retry %v, want %v", tc.name, got, tc.want)
		}
	}
	for s, want := range map[int]bool{502: true, 503: true, 504: true, 429: true, 500: false, 400: false, 404: false, 409: false} {
		if retryableStatus(s) != want {
			t.Errorf("status %d: retry %v", s, !want)
		}
	}
}

func TestLongPollOutlastsDeadline(t *testing.T) {
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(200 * time.Millisecond) // the server holds the poll
		writeJSON(w, http.StatusOK, wire.JobList{Jobs: []model.Job{{ID: 1}}})
	})
	// A real clock: the attempt timeout and the deadline are both real.
	c, err := New(Config{URLs: []string{url}, Deadline: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	jobs, err := c.Claim(t.Context(), model.ClaimRequest{Processor: "p", Wait: model.Duration(time.Second)})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs %v err %v: a long poll must not be cut by the retry deadline", jobs, err)
	}
}

// TestOnRetryAndUnreachable: every failed attempt that may be retried is
// told to Config.OnRetry, and a call that ran out of time
// without an answer is Unreachable, with a short Reason; a server that
// answered 503 until the end is not Unreachable.
func TestOnRetryAndUnreachable(t *testing.T) {
	dead := closedURL(t)
	var seen []RetryInfo
	c, _ := setup(t, Config{URLs: []string{dead}, Deadline: time.Second, OnRetry: func(ri RetryInfo) { seen = append(seen, ri) }})
	_, err := c.GetJob(t.Context(), 1)
	var re *RetryError
	if !errors.As(err, &re) || !Unreachable(err) {
		t.Fatalf("err %v: want an unreachable *RetryError", err)
	}
	if got := Reason(re.Err); got != "connection refused" {
		t.Errorf("reason %q, want connection refused", got)
	}
	if len(seen) != re.Attempts {
		t.Fatalf("OnRetry told %d times for %d attempts, want one each", len(seen), re.Attempts)
	}
	for i, ri := range seen {
		if ri.Attempt != i+1 || ri.URL != dead || ri.Method != http.MethodGet || ri.Path != "/v1/jobs/1" ||
			ri.Deadline != time.Second || ri.Err == nil {
			t.Errorf("retry %d: %+v", i, ri)
		}
	}

	busy := server(t, func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusServiceUnavailable, `{"title":"core database unavailable","status":503}`)
	})
	c, _ = setup(t, Config{URLs: []string{busy}, Deadline: time.Second})
	if _, err := c.GetJob(t.Context(), 1); err == nil || Unreachable(err) || !errors.Is(err, model.ErrUnavailable) {
		t.Errorf("503 until the end: %v, want unavailable but not unreachable", err)
	}
	// An answer that is no dpe problem (a path no route serves) is marked
	// Foreign and names the URL that gave it.
	foreign := server(t, func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	c, _ = setup(t, Config{URLs: []string{foreign}})
	var ae *APIError
	if _, err := c.GetJob(t.Context(), 1); !errors.As(err, &ae) || !ae.Foreign || ae.URL != foreign || ae.Status != 404 {
		t.Errorf("foreign 404: %v %+v", err, ae)
	}
}
