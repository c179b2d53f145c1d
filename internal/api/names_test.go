package api_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/api"
	"github.com/dpe-engine/dpe/internal/wire"
)

// TestNameCaps sends a name one past its cap at every place a name
// enters: each is refused with 422 naming the field and the limit.
func TestNameCaps(t *testing.T) {
	url, _, _ := apiServer(t, false, func(*api.Config) {})
	must(t, 201, "POST", url+"/v1/templates", "name: fine\nsteps:\n  - {id: n, job: noop}\n", nil)
	long := strings.Repeat("n", wire.MaxNameLen+1)
	capText := fmt.Sprintf("at most %d characters", wire.MaxNameLen)
	yaml := map[string]string{"Content-Type": "application/yaml"}
	tests := []struct {
		name, method, path, body string
		header                   map[string]string
		field, detail            string
	}{
		{"token name", "POST", "/v1/tokens", `{"name":"` + long + `","role":"viewer"}`, nil, "name", capText},
		{"token name past its own rule", "POST", "/v1/tokens", `{"name":"` + long[:65] + `","role":"viewer"}`, nil, "name", "1 to 64"},
		{"token name in a path", "DELETE", "/v1/tokens/" + long, "", nil, "name", capText},
		{"template name", "POST", "/v1/templates", "name: " + long + "\nsteps:\n  - {id: n, job: noop}\n", yaml, "name", capText},
		{"template name in a path", "GET", "/v1/templates/" + long, "", nil, "name", capText},
		{"template of a start", "POST", "/v1/workflows", `{"template":"` + long + `"}`, nil, "template", capText},
		{"instance name", "POST", "/v1/workflows", `{"template":"fine","name":"` + strings.Repeat("i", wire.MaxInstanceNameLen+1) + `"}`, nil, "name",
			fmt.Sprintf("at most %d characters", wire.MaxInstanceNameLen)},
		{"trigger name", "POST", "/v1/triggers/" + long + "/fire", `{"fires":[{"key":"k","template":"fine"}]}`, nil, "name", capText},
		{"type name in a path", "PUT", "/v1/types/" + long, `{}`, nil, "name", capText},
		{"job type", "POST", "/v1/jobs", `{"type":"` + long[:65] + `"}`, nil, "type", "64 characters"},
		{"selector key", "POST", "/v1/jobs", `{"type":"noop","selector":{"` + long + `":"v"}}`, nil, "selector", capText},
		{"selector value", "POST", "/v1/jobs", `{"type":"noop","selector":{"k":"` + long + `"}}`, nil, "selector.k", capText},
		{"claim label key", "POST", "/v1/claims", `{"processor":"p","slots":{"noop":1},"labels":{"` + long + `":"v"}}`, nil, "labels", capText},
		{"claim label value", "POST", "/v1/claims", `{"processor":"p","slots":{"noop":1},"labels":{"k":"` + long + `"}}`, nil, "labels.k", capText},
		{"processor id", "POST", "/v1/claims", `{"processor":"` + long + `","slots":{"noop":1}}`, nil, "processor", capText},
		{"processor id in a path", "PUT", "/v1/processors/" + long, `{}`, nil, "id", capText},
		{"worker id", "POST", "/v1/worker/claims", `{"worker":"` + long + `"}`, nil, "worker", capText},
		{"worker id of a heartbeat", "POST", "/v1/worker/heartbeats", `{"worker":"` + long + `"}`, nil, "worker", capText},
		{"lease name", "POST", "/v1/leases/acquire", `{"name":"` + long + `","holder":"h","ttl":"5s"}`, nil, "name", capText},
		{"lease holder", "POST", "/v1/leases/acquire", `{"name":"n","holder":"` + long + `","ttl":"5s"}`, nil, "holder", capText},
		{"job id in a path", "POST", "/v1/jobs/" + strings.Repeat("9", wire.MaxIDDigits+1) + "/cancel", "", nil, "id", "at most 19 digits"},
		{"job id of 10 KB in a path", "GET", "/v1/jobs/" + strings.Repeat("1", 10000), "", nil, "id", "at most 19 digits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := asProblem(t, must(t, 422, tc.method, url+tc.path, tc.body, tc.header))
			if p.Field != tc.field || !strings.Contains(p.Detail, tc.detail) {
				t.Errorf("field %q, detail %q: want field %q and %q", p.Field, p.Detail, tc.field, tc.detail)
			}
			if len(p.Detail) > 300 {
				t.Errorf("detail of %d bytes echoes the name", len(p.Detail))
			}
		})
	}
}
