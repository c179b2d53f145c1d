package api

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// FuzzJobFilter reads a fuzzed query string as GET /v1/jobs does: a
// refusal is a model.ErrInvalid; an accepted filter, encoded again by the
// client's JobQuery, reads back to the same filter.
func FuzzJobFilter(f *testing.F) {
	for _, s := range []string{
		"state=queued,running&type=noop&workflow=4&after=12&limit=10",
		"created_after=2026-01-02T03:04:05Z&created_before=2026-01-02T03:04:05.123456789%2B02:00",
		"limit=-1", "workflow=x", "state=%20,,a", "type=a,b&type=c", "created_after=0000-01-01T00:00:00Z",
		"after=9223372036854775807", "limit=99999999999999999999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest(http.MethodGet, "/v1/jobs", nil)
		r.URL.RawQuery = raw
		got, err := jobFilter(r)
		if err != nil {
			if !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("jobFilter(%q): %v, want an ErrInvalid", raw, err)
			}
			return
		}
		q := client.JobQuery{
			States: got.States, Types: got.Types, Workflow: got.InstanceID,
			CreatedAfter: got.CreatedAfter, CreatedBefore: got.CreatedBefore, Limit: got.Limit,
		}
		if got.After != 0 {
			q.After = strconv.FormatInt(got.After, 10)
		}
		r2 := httptest.NewRequest(http.MethodGet, "/v1/jobs", nil)
		r2.URL.RawQuery = q.Encode()
		back, err := jobFilter(r2)
		if err != nil {
			t.Fatalf("%q → %+v → %q refused: %v", raw, got, q.Encode(), err)
		}
		if !back.CreatedAfter.Equal(got.CreatedAfter) || !back.CreatedBefore.Equal(got.CreatedBefore) {
			t.Fatalf("%q → %q: times %v %v → %v %v", raw, q.Encode(), got.CreatedAfter, got.CreatedBefore, back.CreatedAfter, back.CreatedBefore)
		}
		back.CreatedAfter, back.CreatedBefore = got.CreatedAfter, got.CreatedBefore
		if !reflect.DeepEqual(back, got) {
			t.Fatalf("%q → %+v → %q → %+v", raw, got, q.Encode(), back)
		}
	})
}

// FuzzDecodeJobBatch sends a fuzzed body to decode as POST /v1/jobs/batch
// does: it never panics; a body it accepts is valid JSON without a
// duplicate key and with at most the capped number of jobs; a refusal is a
// 4xx problem.
func FuzzDecodeJobBatch(f *testing.F) {
	for _, s := range []string{
		`{"jobs":[{"type":"noop"}]}`, `{"jobs":[{"type":"noop","type":"exec"}]}`, `{"jobs":[{},{},{}]}`,
		`{"jobs":[{"type":"noop","params":{"a":1,"a":2}}]}`, `{"jobs":null}`, `{"jobs":[]} {}`, `{"x":1}`,
		`{"jobs":[{"type":"noop","priority":1e400}]}`, `[`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := httptest.NewRequest(http.MethodPost, "/v1/jobs/batch", bytes.NewReader(b))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		var v wire.JobBatch
		p := decode(w, r, 4096, &v, itemCap{"jobs", 2})
		if p != nil {
			if p.Status < 400 || p.Status > 499 {
				t.Fatalf("body %q refused with status %d", b, p.Status)
			}
			return
		}
		if len(v.Jobs) > 2 {
			t.Fatalf("body %q accepted with %d jobs, past the cap", b, len(v.Jobs))
		}
		if hasDuplicate(t, bytes.TrimSpace(b)) {
			t.Fatalf("body %q with a duplicate key accepted", b)
		}
	})
}

// FuzzWorkflowFilter reads a fuzzed query string as GET /v1/workflows
// does: a refusal is a model.ErrInvalid; an accepted filter, encoded
// again by the client's WorkflowQuery, reads back to the same filter.
func FuzzWorkflowFilter(f *testing.F) {
	for _, s := range []string{
		"state=failed,running&template=ingest&trigger=nightly&parent=3&after=12&limit=10",
		"created_after=2026-01-02T03:04:05Z&created_before=2026-01-02T03:04:05.123456789%2B02:00",
		"trigger=%20inbox%20", "created_after=yesterday", "created_before=0000-01-01T00:00:00%2B01:00", "parent=-1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest(http.MethodGet, "/v1/workflows", nil)
		r.URL.RawQuery = raw
		got, err := workflowFilter(r)
		if err != nil {
			if !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("workflowFilter(%q): %v, want an ErrInvalid", raw, err)
			}
			return
		}
		q := client.WorkflowQuery{
			States: got.States, Templates: got.Templates, Parent: got.ParentID, Trigger: got.Trigger,
			CreatedAfter: got.CreatedAfter, CreatedBefore: got.CreatedBefore, Limit: got.Limit,
		}
		if got.After != 0 {
			q.After = strconv.FormatInt(got.After, 10)
		}
		r2 := httptest.NewRequest(http.MethodGet, "/v1/workflows", nil)
		r2.URL.RawQuery = q.Encode()
		back, err := workflowFilter(r2)
		if err != nil {
			t.Fatalf("%q → %+v → %q refused: %v", raw, got, q.Encode(), err)
		}
		if !back.CreatedAfter.Equal(got.CreatedAfter) || !back.CreatedBefore.Equal(got.CreatedBefore) {
			t.Fatalf("%q → %q: times %v %v → %v %v", raw, q.Encode(), got.CreatedAfter, got.CreatedBefore, back.CreatedAfter, back.CreatedBefore)
		}
		back.CreatedAfter, back.CreatedBefore = got.CreatedAfter, got.CreatedBefore
		if !reflect.DeepEqual(back, got) {
			t.Fatalf("%q → %+v → %q → %+v", raw, got, q.Encode(), back)
		}
	})
}
