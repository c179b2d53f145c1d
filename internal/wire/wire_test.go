package wire_test

import (
	"encoding/json"
	"go/build"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/wire"
)

// TestJSONShapes pins the encoding of the bodies: a change here is a
// change of the /v1 contract that every SDK must follow.
func TestJSONShapes(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	prio := 7
	cases := []struct {
		name string
		v    any
		want string
	}{
		{"Problem", wire.Problem{Title: "invalid input", Status: 422, Field: "jobs[2].type", Errors: []wire.Issue{{Line: 3, Step: "a", Reason: "unknown job"}}},
			`{"title":"invalid input","status":422,"field":"jobs[2].type","errors":[{"line":3,"step":"a","reason":"unknown job"}]}`},
		{"Items", wire.Items[string]{Items: []string{"a"}}, `{"items":["a"]}`},
		{"PriorityRequest", wire.PriorityRequest{Priority: &prio}, `{"priority":7}`},
		{"JobBatch", wire.JobBatch{Jobs: []model.JobSpec{{Type: "noop"}}}, `{"jobs":[{"type":"noop"}]}`},
		{"HeartbeatRequest", wire.HeartbeatRequest{Processor: "p", LeaseTTL: model.Duration(time.Minute), Jobs: []model.Heartbeat{{ID: 1, Epoch: 2}}},
			`{"processor":"p","lease_ttl":"1m0s","jobs":[{"id":1,"epoch":2}]}`},
		{"ReleaseRequest", wire.ReleaseRequest{Epoch: 3}, `{"epoch":3}`},
		{"CompletionBatch", wire.CompletionBatch{Completions: []wire.BatchCompletion{{ID: 4, Completion: model.Completion{ID: 4, Epoch: 2, Error: "x"}}}},
			`{"completions":[{"id":4,"epoch":2,"error":"x"}]}`},
		{"CompletionResults", wire.CompletionResults{Results: []wire.CompletionResult{{ID: 4, Status: 409, Error: "stale"}}},
			`{"results":[{"id":4,"status":409,"error":"stale"}]}`},
		{"StartBatch", wire.StartBatch{Workflows: []model.InstanceSpec{{Template: "t"}}}, `{"workflows":[{"template":"t"}]}`},
		{"StartResults", wire.StartResults{Results: []wire.StartResult{{Status: 422, Error: "bad"}}}, `{"results":[{"status":422,"error":"bad"}]}`},
		{"AdvanceResults", wire.AdvanceResults{Results: []wire.AdvanceResult{{InstanceID: 9, Status: 409, Error: "lost"}}},
			`{"results":[{"instance_id":9,"status":409,"error":"lost"}]}`},
		{"LostLeases", wire.LostLeases{Lost: []int64{1, 2}}, `{"lost":[1,2]}`},
		{"LeaseRequest", wire.LeaseRequest{Name: "trigger/x", Holder: "h", TTL: model.Duration(10 * time.Second)}, `{"name":"trigger/x","holder":"h","ttl":"10s"}`},
		{"LeaseRequest without TTL", wire.LeaseRequest{Name: "trigger/x", Holder: "h"}, `{"name":"trigger/x","holder":"h"}`},
		{"ErrorReport", wire.ErrorReport{Kind: "folder", Error: ""}, `{"kind":"folder","error":""}`},
		// The processor's announcement (PUT /v1/processors/{id}) and its
		// listing: the presence fields sit beside the labels, not in them.
		{"Processor", model.Processor{ID: "p", Labels: map[string]string{"site": "a"}, Quota: map[string]int{"noop": 2},
			ProcessorPresence: model.ProcessorPresence{Unavailable: map[string]string{"media.probe": "ffmpeg not found"},
				Version: "1.2.3", Used: map[string]int{"noop": 1}, Every: model.Duration(10 * time.Second)}, Running: 1},
			`{"id":"p","labels":{"site":"a"},"quota":{"noop":2},"unavailable":{"media.probe":"ffmpeg not found"},` +
				`"version":"1.2.3","used":{"noop":1},"every":"10s","running":1}`},
		{"ServerInfo", wire.ServerInfo{ID: "s", Version: "v", DB: "sqlite", Ready: true, Started: at, Now: at},
			`{"id":"s","version":"v","db":"sqlite","ready":true,"started_at":"2026-12-06T10:00:00Z","now":"2026-12-06T10:00:00Z"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(b); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestLeaf: wire imports only model and the standard library, so a remote
// role or an SDK generator can depend on it without server code.
func TestLeaf(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, imp := range pkg.Imports {
		if strings.Contains(imp, ".") && imp != "github.com/dpe-engine/dpe/internal/model" {
			t.Errorf("wire imports %s; only internal/model and the standard library are allowed", imp)
		}
	}
}
