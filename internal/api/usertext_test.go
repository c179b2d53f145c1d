package api_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestProblemsInUserWords: not-found and conflict answers say what is
// wrong in a user's words, without the store's engine or operation names
// (the CLI prints the detail as it is).
func TestProblemsInUserWords(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		url := serve(t, dsn, "")
		engine := regexp.MustCompile(`sqlite|postgres|: conflict$|: not found$`)
		for path, want := range map[string]string{
			"/v1/jobs/9999":               "job 9999 not found",
			"/v1/workflows/9999":          "workflow instance 9999 not found",
			"/v1/templates/nosuch":        "template nosuch not found",
			"/v1/triggers/nosuch":         "trigger nosuch not found",
			"/v1/triggers/nosuch/records": "trigger nosuch not found",
		} {
			p := asProblem(t, must(t, 404, "GET", url+path, "", nil))
			if p.Detail != want {
				t.Errorf("GET %s: detail %q, want %q", path, p.Detail, want)
			}
		}
		id := must(t, 201, "POST", url+"/v1/jobs", `{"type":"noop"}`, nil).id(t)
		jobURL := url + "/v1/jobs/" + strconv.FormatInt(id, 10)
		must(t, 200, "POST", jobURL+"/cancel", "", nil)
		if a := call(t, "POST", jobURL+"/cancel", "", nil); a.status == 409 {
			if p := asProblem(t, a); engine.MatchString(p.Detail) || !strings.Contains(p.Detail, "job "+strconv.FormatInt(id, 10)) {
				t.Errorf("conflict detail %q", p.Detail)
			}
		}
	})
}

// TestPutTypeIsPartial: PUT /v1/types/{name} changes only the fields in
// the body and refuses a type nobody registered unless create is true.
func TestPutTypeIsPartial(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		url := serve(t, dsn, "")
		must(t, 200, "PUT", url+"/v1/types/noop", `{"max_running":4}`, nil)
		a := must(t, 200, "PUT", url+"/v1/types/noop", `{"rate":10,"burst":10}`, nil)
		var l struct {
			MaxRunning int     `json:"max_running"`
			Rate       float64 `json:"rate"`
			Burst      int     `json:"burst"`
		}
		if err := json.Unmarshal(a.body, &l); err != nil || l.MaxRunning != 4 || l.Rate != 10 || l.Burst != 10 {
			t.Errorf("after two partial sets: %s, want max running 4 kept", a.body)
		}
		a = must(t, 200, "PUT", url+"/v1/types/noop", `{"max_running":0}`, nil)
		l.MaxRunning = -1 // absent from the answer when 0
		if err := json.Unmarshal(a.body, &l); err != nil || l.MaxRunning != -1 || l.Rate != 10 {
			t.Errorf("max running back to unlimited: %s", a.body)
		}
		p := asProblem(t, must(t, 422, "PUT", url+"/v1/types/nosuch.type", `{"max_running":3}`, nil))
		if p.Field != "type" || !strings.Contains(p.Detail, `unknown job type "nosuch.type"; known: `) || !strings.Contains(p.Detail, "util.copy") {
			t.Errorf("unknown type: %+v", p)
		}
		must(t, 200, "PUT", url+"/v1/types/nosuch.type", `{"max_running":3,"create":true}`, nil)
		must(t, 200, "PUT", url+"/v1/types/nosuch.type", `{"rate":1}`, nil) // registered now
	})
}
