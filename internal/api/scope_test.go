package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/api"
	"github.com/dpe-engine/dpe/internal/model"
)

// claimOne claims one job of typ as processor proc and returns its id and
// epoch.
func claimOne(t *testing.T, url string, h map[string]string, proc, typ string) (id, epoch int64) {
	t.Helper()
	list, _ := must(t, 200, "POST", url+"/v1/claims", fmt.Sprintf(`{"processor":%q,"slots":{%q:1}}`, proc, typ), h).object(t)["jobs"].([]any)
	if len(list) != 1 {
		t.Fatalf("claim of %s: %d jobs, want 1", typ, len(list))
	}
	j := list[0].(map[string]any)
	return int64(j["id"].(float64)), int64(j["epoch"].(float64))
}

// TestProcessorTypes: a processor token with job type patterns claims,
// renews, reports, releases and logs only jobs of those types; for any
// other it gets a 403 that does not say which types it may serve. A
// token without patterns serves every type.
func TestProcessorTypes(t *testing.T) {
	url, secrets, _ := apiServer(t, true, func(*api.Config) {})
	admin := bearer(secrets[model.RoleAdmin])
	must(t, 204, "PUT", url+"/v1/processors/reg", `{"quota":{"audio.x":1}}`, admin) // makes audio.x known
	audio := bearer(newSecret(t, url, secrets[model.RoleAdmin], `{"name":"audio-farm","role":"processor","types":["audio.*"]}`))
	anyType := bearer(secrets[model.RoleProcessor])
	list := must(t, 200, "GET", url+"/v1/tokens", "", admin)
	if want := `"types":["audio.*"]`; !strings.Contains(string(list.body), want) {
		t.Errorf("token list %s: want %s", list.body, want)
	}

	must(t, 201, "POST", url+"/v1/jobs", `{"type":"noop"}`, admin)
	must(t, 201, "POST", url+"/v1/jobs", `{"type":"audio.x"}`, admin)
	for _, body := range []string{`{"processor":"a","slots":{"noop":1}}`, `{"processor":"a","slots":{"audio.x":1,"noop":1}}`} {
		a := must(t, 403, "POST", url+"/v1/claims", body, audio)
		if p := asProblem(t, a); strings.Contains(p.Detail, "audio") || strings.Contains(p.Detail, "noop") {
			t.Errorf("403 detail %q names types", p.Detail)
		}
	}
	id, epoch := claimOne(t, url, anyType, "b", "noop") // another token may serve noop
	own, ownEpoch := claimOne(t, url, audio, "a", "audio.x")

	other := []struct{ path, body string }{
		{fmt.Sprintf("/v1/jobs/%d/progress", id), fmt.Sprintf(`{"epoch":%d,"progress":5}`, epoch)},
		{"/v1/heartbeats", fmt.Sprintf(`{"processor":"a","jobs":[{"id":%d,"epoch":%d},{"id":%d,"epoch":%d}]}`, own, ownEpoch, id, epoch)},
		{fmt.Sprintf("/v1/jobs/%d/logs", id), `{"lines":[{"text":"x"}]}`},
		{fmt.Sprintf("/v1/jobs/%d/release", id), fmt.Sprintf(`{"epoch":%d}`, epoch)},
		{"/v1/completions", fmt.Sprintf(`{"completions":[{"id":%d,"epoch":%d}]}`, id, epoch)},
		{fmt.Sprintf("/v1/jobs/%d/complete", id), fmt.Sprintf(`{"epoch":%d}`, epoch)},
	}
	for _, c := range other {
		must(t, 403, "POST", url+c.path, c.body, audio)
	}
	if j := must(t, 200, "GET", fmt.Sprintf("%s/v1/jobs/%d", url, id), "", admin).object(t); j["state"] != "running" {
		t.Fatalf("the noop job is %v after the refused calls, want running", j["state"])
	}
	// Its own type: served.
	must(t, 200, "POST", url+"/v1/heartbeats", fmt.Sprintf(`{"processor":"a","jobs":[{"id":%d,"epoch":%d}]}`, own, ownEpoch), audio)
	must(t, 200, "POST", fmt.Sprintf("%s/v1/jobs/%d/complete", url, own), fmt.Sprintf(`{"epoch":%d}`, ownEpoch), audio)
	// A job that does not exist is answered as before.
	must(t, 404, "POST", url+"/v1/jobs/99999/complete", `{"epoch":1}`, audio)
	must(t, 200, "POST", fmt.Sprintf("%s/v1/jobs/%d/complete", url, id), fmt.Sprintf(`{"epoch":%d}`, epoch), anyType)

	// Patterns belong to processor tokens only.
	must(t, 422, "POST", url+"/v1/tokens", `{"name":"x","role":"operator","types":["a"]}`, admin)
	must(t, 422, "POST", url+"/v1/tokens", `{"name":"y","role":"processor","types":["a,b"]}`, admin)
}
