package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// TestEndpoints checks each typed method's method, path and body against
// the API table, and that the answer decodes.
func TestEndpoints(t *testing.T) {
	type seen struct{ method, uri, body string }
	var last seen
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		last = seen{r.Method, r.URL.RequestURI(), string(b)}
		switch r.URL.Path {
		case "/v1/processors/p%201", "/v1/processors/p 1":
			w.WriteHeader(http.StatusNoContent)
		case "/v1/jobs/batch", "/v1/claims":
			writeJSON(w, http.StatusOK, wire.JobList{Jobs: []model.Job{{ID: 1}, {ID: 2}}})
		case "/v1/jobs":
			if r.Method == http.MethodGet {
				writeJSON(w, http.StatusOK, model.Page[model.Job]{Items: []model.Job{{ID: 3}}, Total: 9, Next: "c2"})
				return
			}
			writeJSON(w, http.StatusCreated, model.Job{ID: 1})
		case "/v1/heartbeats":
			writeJSON(w, http.StatusOK, wire.HeartbeatResponse{Jobs: []model.HeartbeatResult{{ID: 1, Status: model.LeaseCanceled}}})
		case "/v1/jobs/5/progress":
			writeJSON(w, http.StatusOK, model.HeartbeatResult{ID: 5, Status: model.LeaseOK})
		case "/v1/processors":
			writeJSON(w, http.StatusOK, wire.Items[model.Processor]{Items: []model.Processor{{ID: "p"}}})
		case "/v1/types":
			writeJSON(w, http.StatusOK, wire.Items[model.TypeLimit]{Items: []model.TypeLimit{{Type: "noop"}}})
		case "/v1/types/noop":
			writeJSON(w, http.StatusOK, model.TypeLimit{Type: "noop", MaxRunning: 2})
		case "/v1/status":
			writeJSON(w, http.StatusOK, wire.Status{Server: wire.ServerInfo{ID: "s1"}})
		default:
			writeJSON(w, http.StatusOK, model.Job{ID: 5})
		}
	})
	c, _ := setup(t, Config{URLs: []string{url}})
	ctx := t.Context()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cases := []struct {
		name         string
		call         func(context.Context) (any, error)
		method, uri  string
		body         string
		checkDecoded func(any) bool
	}{
		{"SubmitJob", func(ctx context.Context) (any, error) {
			return c.SubmitJob(ctx, model.JobSpec{Type: "noop"})
		}, "POST", "/v1/jobs", marshal(model.JobSpec{Type: "noop"}), nil},
		{"SubmitJobs", func(ctx context.Context) (any, error) {
			return c.SubmitJobs(ctx, []model.JobSpec{{Type: "a"}, {Type: "b"}})
		}, "POST", "/v1/jobs/batch", marshal(wire.JobBatch{Jobs: []model.JobSpec{{Type: "a"}, {Type: "b"}}}),
			func(v any) bool { return len(v.([]model.Job)) == 2 }},
		{"GetJob", func(ctx context.Context) (any, error) { return c.GetJob(ctx, 5) }, "GET", "/v1/jobs/5", "", nil},
		{"ListJobs", func(ctx context.Context) (any, error) {
			return c.ListJobs(ctx, JobQuery{States: []model.JobState{"queued", "running"}, Types: []string{"noop"},
				Workflow: 4, CreatedAfter: created, Limit: 10, After: "c1"})
		}, "GET", "/v1/jobs?after=c1&created_after=2026-01-02T03%3A04%3A05Z&limit=10&state=queued%2Crunning&type=noop&workflow=4", "",
			func(v any) bool { p := v.(*model.Page[model.Job]); return p.Total == 9 && p.Next == "c2" }},
		{"CancelJob", func(ctx context.Context) (any, error) { return c.CancelJob(ctx, 5) }, "POST", "/v1/jobs/5/cancel", "", nil},
		{"SetJobPriority", func(ctx context.Context) (any, error) { return c.SetJobPriority(ctx, 5, 0) },
			"POST", "/v1/jobs/5/priority", `{"priority":0}`, nil},
		{"Claim", func(ctx context.Context) (any, error) {
			return c.Claim(ctx, model.ClaimRequest{Processor: "p", Slots: map[string]int{"noop": 2}, Wait: model.Duration(time.Second)})
		}, "POST", "/v1/claims", `{"processor":"p","slots":{"noop":2},"wait":"1s"}`, nil},
		{"Heartbeat", func(ctx context.Context) (any, error) {
			return c.Heartbeat(ctx, wire.HeartbeatRequest{Processor: "p", Jobs: []model.Heartbeat{{ID: 1, Epoch: 2}}})
		}, "POST", "/v1/heartbeats", `{"processor":"p","jobs":[{"id":1,"epoch":2}]}`,
			func(v any) bool { return v.([]model.HeartbeatResult)[0].Status == model.LeaseCanceled }},
		{"Progress", func(ctx context.Context) (any, error) {
			p := 40
			return c.Progress(ctx, model.Heartbeat{ID: 5, Epoch: 2, Progress: &p, Message: "m"})
		}, "POST", "/v1/jobs/5/progress", `{"id":5,"epoch":2,"progress":40,"message":"m"}`, nil},
		{"Complete", func(ctx context.Context) (any, error) {
			return c.Complete(ctx, model.Completion{ID: 5, Epoch: 2, Error: "boom", Permanent: true})
		}, "POST", "/v1/jobs/5/complete", `{"epoch":2,"error":"boom","permanent":true}`, nil},
		{"Release", func(ctx context.Context) (any, error) { return c.Release(ctx, 5, 3) },
			"POST", "/v1/jobs/5/release", `{"epoch":3}`, nil},
		{"PutProcessor", func(ctx context.Context) (any, error) {
			return nil, c.PutProcessor(ctx, model.Processor{ID: "p 1"})
		}, "PUT", "/v1/processors/p%201", `{"id":"p 1","running":0}`, nil},
		{"ListProcessors", func(ctx context.Context) (any, error) { return c.ListProcessors(ctx) }, "GET", "/v1/processors", "",
			func(v any) bool { return v.([]model.Processor)[0].ID == "p" }},
		{"ListTypes", func(ctx context.Context) (any, error) { return c.ListTypes(ctx) }, "GET", "/v1/types", "",
			func(v any) bool { return v.([]model.TypeLimit)[0].Type == "noop" }},
		{"PutType", func(ctx context.Context) (any, error) {
			return c.PutType(ctx, wire.TypeSet{Type: "noop", MaxRunning: ptr(2)})
		}, "PUT", "/v1/types/noop", `{"type":"noop","max_running":2}`,
			func(v any) bool { return v.(*model.TypeLimit).MaxRunning == 2 }},
		{"Status", func(ctx context.Context) (any, error) { return c.Status(ctx) }, "GET", "/v1/status", "",
			func(v any) bool { return v.(*wire.Status).Server.ID == "s1" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := tc.call(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if last.method != tc.method || last.uri != tc.uri {
				t.Errorf("sent %s %s, want %s %s", last.method, last.uri, tc.method, tc.uri)
			}
			if !jsonEqual(last.body, tc.body) {
				t.Errorf("body %s, want %s", last.body, tc.body)
			}
			if tc.checkDecoded != nil && !tc.checkDecoded(v) {
				t.Errorf("decoded %+v", v)
			}
		})
	}
}

func TestAllJobsWalksPages(t *testing.T) {
	url := server(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("after") {
		case "":
			writeJSON(w, http.StatusOK, model.Page[model.Job]{Items: []model.Job{{ID: 3}, {ID: 2}}, Total: 3, Next: "2"})
		case "2":
			writeJSON(w, http.StatusOK, model.Page[model.Job]{Items: []model.Job{{ID: 1}}, Total: 3})
		}
	})
	c, _ := setup(t, Config{URLs: []string{url}})
	var ids []int64
	for j, err := range c.AllJobs(t.Context(), JobQuery{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	if len(ids) != 3 || ids[0] != 3 || ids[2] != 1 {
		t.Errorf("ids %v", ids)
	}
}

func jsonEqual(a, b string) bool {
	if a == "" || b == "" {
		return a == b
	}
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}

func marshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func ptr[T any](v T) *T { return &v }
