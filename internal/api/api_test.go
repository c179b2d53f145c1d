package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/api"
	"github.com/dpe-engine/dpe/internal/coredb"
	"github.com/dpe-engine/dpe/internal/server/jobs"
	"github.com/dpe-engine/dpe/internal/server/triggers"
	"github.com/dpe-engine/dpe/internal/server/wake"
	"github.com/dpe-engine/dpe/internal/server/workflows"
	"github.com/dpe-engine/dpe/internal/store"
	"github.com/dpe-engine/dpe/internal/testdb"
)

// These tests speak HTTP and JSON only (raw bodies in, maps or local
// structs out), so they hold whatever Go types the handlers use inside.

// engines runs f once per core database engine, each time on a fresh
// database.
func engines(t *testing.T, f func(t *testing.T, dsn string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, "sqlite:"+filepath.Join(t.TempDir(), "dpe.db")) })
	t.Run("postgres", func(t *testing.T) { f(t, testdb.Postgres(t)) })
}

// serve wires the API on the store at dsn as the server does (one wake
// hub shared by the job and workflow services, triggers when the store
// has them) and serves it with httptest until the test ends. token, when
// set, is required on /v1.
func serve(t *testing.T, dsn, token string) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := coredb.Open(context.Background(), dsn, log)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	hub := wake.NewHub()
	js := jobs.New(jobs.Config{Store: st, Log: log, Wake: hub})
	flows := workflows.New(workflows.Config{Store: st, Log: log, Wake: hub, KnownJobType: js.KnownType})
	var trig *triggers.Service
	if ts, ok := st.(store.TriggerStore); ok {
		trig = triggers.New(triggers.Config{Store: ts, Flows: flows, Log: log})
	}
	h := api.New(api.Config{Jobs: js, Flows: flows, Triggers: trig, Store: st, Log: log, Token: token})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		hub.Close() // long-polls return before the server waits for them
		srv.Close()
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return srv.URL
}

// answer is one HTTP answer, its body kept raw.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// object decodes the body as a JSON object.
func (a answer) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v: %s", a.status, err, a.body)
	}
	return m
}

// id returns the "id" of a JSON object answer.
func (a answer) id(t *testing.T) int64 {
	t.Helper()
	v, ok := a.object(t)["id"].(float64)
	if !ok || v <= 0 {
		t.Fatalf("answer has no id: %s", a.body)
	}
	return int64(v)
}

// call sends one request; body "" sends none. header holds extra headers
// (a JSON content type is set for a body unless header sets another).
func call(t *testing.T, method, url, body string, header map[string]string) answer {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v // net/http sends req.Host, not the header
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: b}
}

// must sends a request and fails the test unless the answer has status
// want.
func must(t *testing.T, want int, method, url, body string, header map[string]string) answer {
	t.Helper()
	a := call(t, method, url, body, header)
	if a.status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, a.status, want, a.body)
	}
	return a
}

// problem is the RFC 9457 body the API sends for every error.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Field  string `json:"field"`
	Errors []struct {
		Line   int    `json:"line"`
		Step   string `json:"step"`
		Field  string `json:"field"`
		Reason string `json:"reason"`
	} `json:"errors"`
}

// asProblem checks that a is a problem+json answer of its own status and
// returns it.
func asProblem(t *testing.T, a answer) problem {
	t.Helper()
	if ct := a.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with content type %q, want application/problem+json: %s", a.status, ct, a.body)
	}
	var p problem
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("problem body: %v: %s", err, a.body)
	}
	if p.Status != a.status || p.Title == "" || p.Type == "" {
		t.Fatalf("problem %+v: want status %d, a title and a type", p, a.status)
	}
	return p
}

// count returns the total of a list route (/v1/jobs, /v1/workflows).
func count(t *testing.T, url string) int {
	t.Helper()
	a := must(t, 200, "GET", url, "", nil)
	total, ok := a.object(t)["total"].(float64)
	if !ok {
		t.Fatalf("list has no total: %s", a.body)
	}
	return int(total)
}
