package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"testing"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
)

// FuzzWorkflowFilter reads a fuzzed query string as GET /v1/workflows
// does: a refusal is a model.ErrInvalid; an accepted query, encoded again
// by the client's WorkflowQuery, reads back to the same name and filter.
func FuzzWorkflowFilter(f *testing.F) {
	for _, s := range []string{
		"state=running,failed&template=etl,thumbs&parent=4&after=12&limit=10",
		"name=inbox%2Fa.mp4", "name=x&limit=-1", "limit=-1", "parent=x", "state=%20,,a",
		"template=a,b&template=c", "after=9223372036854775807", "limit=99999999999999999999", "name=&state=done",
		"state=failed,running&template=ingest&trigger=nightly&parent=3&after=12&limit=10",
		"created_after=2026-01-02T03:04:05Z&created_before=2026-01-02T03:04:05.123456789%2B02:00",
		"trigger=%20inbox%20", "created_after=yesterday", "created_before=0000-01-01T00:00:00%2B01:00", "parent=-1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := httptest.NewRequest(http.MethodGet, "/v1/workflows", nil)
		r.URL.RawQuery = raw
		name, got, err := workflowFilter(r)
		if err != nil {
			if !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("workflowFilter(%q): %v, want an ErrInvalid", raw, err)
			}
			return
		}
		q := client.WorkflowQuery{
			Name: name, States: got.States, Templates: got.Templates, Parent: got.ParentID, Trigger: got.Trigger,
			CreatedAfter: got.CreatedAfter, CreatedBefore: got.CreatedBefore, Limit: got.Limit,
		}
		if got.After != 0 {
			q.After = strconv.FormatInt(got.After, 10)
		}
		r2 := httptest.NewRequest(http.MethodGet, "/v1/workflows", nil)
		r2.URL.RawQuery = q.Encode()
		backName, back, err := workflowFilter(r2)
		if err != nil {
			t.Fatalf("%q → %q refused: %v", raw, q.Encode(), err)
		}
		// Times compare as instants (the encoding may change the zone).
		if !back.CreatedAfter.Equal(got.CreatedAfter) || !back.CreatedBefore.Equal(got.CreatedBefore) {
			t.Fatalf("%q → %q: times %v %v → %v %v", raw, q.Encode(), got.CreatedAfter, got.CreatedBefore, back.CreatedAfter, back.CreatedBefore)
		}
		back.CreatedAfter, back.CreatedBefore = got.CreatedAfter, got.CreatedBefore
		if backName != name || !reflect.DeepEqual(back, got) {
			t.Fatalf("%q → %q %+v → %q → %q %+v", raw, name, got, q.Encode(), backName, back)
		}
	})
}
