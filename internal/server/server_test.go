package server_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/server"
	"github.com/dpe-engine/dpe/internal/testdb"
	"github.com/dpe-engine/dpe/internal/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

// engines runs f against a server on each core database engine.
func engines(t *testing.T, f func(t *testing.T, url string)) {
	t.Run("sqlite", func(t *testing.T) {
		f(t, startServer(t, "sqlite:"+filepath.Join(t.TempDir(), "dpe.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		f(t, startServer(t, testdb.Postgres(t)))
	})
}

// startServer runs a real server on dsn until the test ends and returns
// its URL.
func startServer(t *testing.T, dsn string) string {
	t.Helper()
	srv, _ := runServer(t, server.Config{DB: dsn})
	return srv.URL()
}

// runServer runs a real server until stop (idempotent) or the end of the
// test. Unset, cfg's database is a fresh SQLite file, its address a free
// port and its shutdown grace 5 s.
func runServer(t *testing.T, cfg server.Config) (srv *server.Server, stop func()) {
	t.Helper()
	if cfg.DB == "" {
		cfg.DB = "sqlite:" + filepath.Join(t.TempDir(), "dpe.db")
	}
	cfg.Listen = cmp.Or(cfg.Listen, "127.0.0.1:0")
	cfg.ShutdownGrace = cmp.Or(cfg.ShutdownGrace, 5*time.Second)
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("server %s: %v", cfg.ID, err)
			}
		})
	}
	t.Cleanup(stop)
	select {
	case <-srv.Ready():
	case err := <-done:
		t.Fatalf("server stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("server not ready in 30s")
	}
	return srv, stop
}

func do(t *testing.T, method, url, contentType string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func countJobs(t *testing.T, url string) int {
	t.Helper()
	resp, b := do(t, "GET", url+"/v1/jobs?limit=1", "", nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("list: %d %s", resp.StatusCode, b)
	}
	var p model.Page[model.Job]
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return p.Total
}

// TestBadInput: every bad request gets a 4xx problem+json naming what is
// wrong, and stores nothing.
func TestBadInput(t *testing.T) {
	engines(t, func(t *testing.T, url string) {
		big := `{"type":"noop","params":{"result":{"pad":"` + strings.Repeat("x", 2<<20) + `"}}}`
		cases := []struct {
			name, path, ctype, body string
			status                  int
			field, detail           string
		}{
			{"unknown job type", "/v1/jobs", "application/json", `{"type":"audio.nope"}`, 422, "type", "unknown job type"},
			{"bad type name", "/v1/jobs", "application/json", `{"type":"Bad Type!"}`, 422, "type", ""},
			{"malformed JSON", "/v1/jobs", "application/json", `{"type":"noop",`, 400, "", "unexpected end"},
			{"not JSON at all", "/v1/jobs", "application/json", `type=noop`, 400, "", "syntax error"},
			{"unknown field", "/v1/jobs", "application/json", `{"type":"noop","prio":3}`, 400, "prio", "unknown field"},
			{"wrong field type", "/v1/jobs", "application/json", `{"type":"noop","priority":"high"}`, 400, "priority", ""},
			{"body over the limit", "/v1/jobs", "application/json", big, 413, "", "limit"},
			{"missing required param", "/v1/jobs", "application/json", `{"type":"util.checksum","params":{}}`, 422, "params.path", "required"},
			{"wrong param type", "/v1/jobs", "application/json", `{"type":"util.checksum","params":{"path":7}}`, 422, "params.path", ""},
			{"unknown param", "/v1/jobs", "application/json", `{"type":"noop","params":{"slep":"1s"}}`, 422, "params.slep", ""},
			{"negative priority", "/v1/jobs", "application/json", `{"type":"noop","priority":-1}`, 422, "priority", ""},
			{"bad duration", "/v1/jobs", "application/json", `{"type":"noop","timeout":"soon"}`, 400, "", "duration"},
			{"wrong content type", "/v1/jobs", "text/plain", `{"type":"noop"}`, 415, "", "application/json"},
			{"empty batch", "/v1/jobs/batch", "application/json", `{"jobs":[]}`, 422, "jobs", ""},
			{"one bad job spoils the batch", "/v1/jobs/batch", "application/json", `{"jobs":[{"type":"noop"},{"type":"noop","priority":-5}]}`, 422, "jobs[1].priority", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp, b := do(t, "POST", url+tc.path, tc.ctype, []byte(tc.body), nil)
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
				}
				if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
					t.Fatalf("content type %q", ct)
				}
				var p wire.Problem
				if err := json.Unmarshal(b, &p); err != nil {
					t.Fatalf("problem body: %v: %s", err, b)
				}
				if p.Status != tc.status || p.Title == "" {
					t.Fatalf("problem %+v", p)
				}
				if tc.field != "" && p.Field != tc.field {
					t.Fatalf("field %q, want %q (%s)", p.Field, tc.field, b)
				}
				if !strings.Contains(p.Detail, tc.detail) {
					t.Fatalf("detail %q lacks %q", p.Detail, tc.detail)
				}
			})
		}
		if n := countJobs(t, url); n != 0 {
			t.Fatalf("bad input stored %d jobs", n)
		}
		resp, _ := do(t, "GET", url+"/v1/jobs/12345", "", nil, nil)
		if resp.StatusCode != 404 {
			t.Fatalf("missing job: %d", resp.StatusCode)
		}
		resp, _ = do(t, "GET", url+"/v1/jobs?state=bogus", "", nil, nil)
		if resp.StatusCode != 422 {
			t.Fatalf("bad state filter: %d", resp.StatusCode)
		}
	})
}

// TestIdempotentSubmit: a retried submit with the same Idempotency-Key
// creates one job, on both engines.
func TestIdempotentSubmit(t *testing.T) {
	engines(t, func(t *testing.T, url string) {
		h := map[string]string{"Idempotency-Key": "abc-123"}
		r1, b1 := do(t, "POST", url+"/v1/jobs", "application/json", []byte(`{"type":"noop"}`), h)
		r2, b2 := do(t, "POST", url+"/v1/jobs", "application/json", []byte(`{"type":"noop"}`), h)
		if r1.StatusCode != 201 || r2.StatusCode != 200 {
			t.Fatalf("statuses %d %d: %s %s", r1.StatusCode, r2.StatusCode, b1, b2)
		}
		var j1, j2 model.Job
		_ = json.Unmarshal(b1, &j1)
		_ = json.Unmarshal(b2, &j2)
		if j1.ID == 0 || j1.ID != j2.ID {
			t.Fatalf("ids %d %d", j1.ID, j2.ID)
		}
		batch := []byte(`{"jobs":[{"type":"noop"},{"type":"noop"}]}`)
		hb := map[string]string{"Idempotency-Key": "batch-1"}
		do(t, "POST", url+"/v1/jobs/batch", "application/json", batch, hb)
		do(t, "POST", url+"/v1/jobs/batch", "application/json", batch, hb)
		if n := countJobs(t, url); n != 3 {
			t.Fatalf("%d jobs, want 3", n)
		}
	})
}

// TestIdempotentClaim: a retried claim with the same Idempotency-Key (its
// answer lost) gets the same jobs and claims no more, on both engines; a
// new key claims the rest; a key over 200 characters is refused.
func TestIdempotentClaim(t *testing.T) {
	engines(t, func(t *testing.T, url string) {
		for range 5 {
			if r, b := do(t, "POST", url+"/v1/jobs", "application/json", []byte(`{"type":"noop"}`), nil); r.StatusCode != 201 {
				t.Fatalf("submit: %d %s", r.StatusCode, b)
			}
		}
		claim := func(key string, slots int) []model.Job {
			t.Helper()
			body := fmt.Appendf(nil, `{"processor":"p1","slots":{"noop":%d}}`, slots)
			r, b := do(t, "POST", url+"/v1/claims", "application/json", body, map[string]string{"Idempotency-Key": key})
			if r.StatusCode != 200 {
				t.Fatalf("claim with key %q: %d %s", key, r.StatusCode, b)
			}
			var l wire.JobList
			if err := json.Unmarshal(b, &l); err != nil {
				t.Fatal(err)
			}
			return l.Jobs
		}
		first := claim("claim-1", 2)
		// The retry may differ in body (more slots): it still gets the
		// first answer.
		for _, slots := range []int{2, 4} {
			again := claim("claim-1", slots)
			if len(first) != 2 || len(again) != 2 {
				t.Fatalf("claimed %d then %d jobs, want 2 and 2", len(first), len(again))
			}
			for i := range first {
				if again[i].ID != first[i].ID || again[i].Epoch != first[i].Epoch {
					t.Fatalf("retry got job %d epoch %d, want %d epoch %d",
						again[i].ID, again[i].Epoch, first[i].ID, first[i].Epoch)
				}
			}
		}
		if rest := claim("claim-2", 10); len(rest) != 3 {
			t.Fatalf("a new key claimed %d jobs, want the 3 left", len(rest))
		}
		r, b := do(t, "POST", url+"/v1/claims", "application/json", []byte(`{"processor":"p1","slots":{"noop":1}}`),
			map[string]string{"Idempotency-Key": strings.Repeat("k", 201)})
		if r.StatusCode != 400 || !bytes.Contains(b, []byte("Idempotency-Key")) {
			t.Fatalf("201-character key: %d %s, want 400 naming Idempotency-Key", r.StatusCode, b)
		}
	})
}

// TestHealth: /healthz lives, /readyz reports the database.
func TestHealth(t *testing.T) {
	url := startServer(t, "sqlite:"+filepath.Join(t.TempDir(), "dpe.db"))
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/v1/status"} {
		resp, b := do(t, "GET", url+p, "", nil, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, b)
		}
	}
}

// TestClientRidesOverDeadServer: a client given a dead and a live server
// never surfaces an error, and its retried submits create one job each.
func TestClientRidesOverDeadServer(t *testing.T) {
	live := startServer(t, "sqlite:"+filepath.Join(t.TempDir(), "dpe.db"))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more
	c, err := client.New(client.Config{URLs: []string{dead, live}, Deadline: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := range 50 {
		key := fmt.Sprintf("submit-%d", i)
		for range 2 { // the second is a retry of the first
			if _, err := c.SubmitJob(ctx, model.JobSpec{Type: "noop"}, client.WithIdempotencyKey(key)); err != nil {
				t.Fatalf("submit %d: %v", i, err)
			}
		}
	}
	if n := countJobs(t, live); n != 50 {
		t.Fatalf("%d jobs, want 50", n)
	}
}

// TestRetentionPurges: finished jobs are purged after the retention by the
// server holding the cleaner lease; unfinished ones stay.
func TestRetentionPurges(t *testing.T) {
	srv, _ := runServer(t, server.Config{Retention: time.Millisecond, CleanEvery: 20 * time.Millisecond})
	ctx := t.Context()
	c, err := client.New(client.Config{URLs: []string{srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	finished, err := c.SubmitJob(ctx, model.JobSpec{Type: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := c.Claim(ctx, model.ClaimRequest{Processor: "p", Slots: map[string]int{"noop": 1}})
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v %v", jobs, err)
	}
	if _, err := c.Complete(ctx, model.Completion{ID: jobs[0].ID, Epoch: jobs[0].Epoch}); err != nil {
		t.Fatal(err)
	}
	queued, err := c.SubmitJob(ctx, model.JobSpec{Type: "noop"})
	if err != nil {
		t.Fatal(err)
	}
	eventually.Value(t, 10*time.Second, func() (error, error) {
		_, err := c.GetJob(ctx, finished.ID)
		return err, nil
	}, func(err error) bool { return errors.Is(err, model.ErrNotFound) }, "the finished job to be purged (last answer of GET)")
	if _, err := c.GetJob(ctx, queued.ID); err != nil {
		t.Fatalf("queued job: %v", err)
	}
}

// TestStartBatch: POST /v1/workflows/batch starts many instances with one
// commit, each with its own status; a retry with the same Idempotency-Key
// starts nothing twice.
func TestStartBatch(t *testing.T) {
	engines(t, func(t *testing.T, url string) {
		tpl := []byte("name: two\nsteps:\n  - set: {x: 1}\n")
		if r, b := do(t, "POST", url+"/v1/templates", "application/yaml", tpl, nil); r.StatusCode != 201 && r.StatusCode != 200 {
			t.Fatalf("import: %d %s", r.StatusCode, b)
		}
		body := []byte(`{"workflows":[{"template":"two"},{"template":"nope"},{"template":"two","name":"named"},{"template":"two","priority":-1}]}`)
		start := func() wire.StartResults {
			t.Helper()
			r, b := do(t, "POST", url+"/v1/workflows/batch", "application/json", body, map[string]string{"Idempotency-Key": "batch-1"})
			if r.StatusCode != 200 {
				t.Fatalf("batch start: %d %s", r.StatusCode, b)
			}
			var res wire.StartResults
			if err := json.Unmarshal(b, &res); err != nil {
				t.Fatal(err)
			}
			if len(res.Results) != 4 {
				t.Fatalf("%d results for 4 starts: %s", len(res.Results), b)
			}
			return res
		}
		first := start()
		for i, want := range []int{201, 422, 201, 422} {
			if got := first.Results[i].Status; got != want {
				t.Errorf("start %d: status %d (%s), want %d", i, got, first.Results[i].Error, want)
			}
		}
		if !strings.Contains(first.Results[1].Error, "nope") || !strings.Contains(first.Results[3].Error, "priority") {
			t.Errorf("errors do not name what is wrong: %q, %q", first.Results[1].Error, first.Results[3].Error)
		}
		again := start()
		for _, i := range []int{0, 2} {
			if again.Results[i].Status != 200 || again.Results[i].Instance.ID != first.Results[i].Instance.ID {
				t.Errorf("retry of start %d: %d %+v, want 200 and instance %d", i, again.Results[i].Status,
					again.Results[i].Instance, first.Results[i].Instance.ID)
			}
		}
		if r, b := do(t, "POST", url+"/v1/workflows/batch", "application/json", []byte(`{"workflows": 3}`), nil); r.StatusCode != 400 {
			t.Errorf("malformed batch: %d %s", r.StatusCode, b)
		}
	})
}
