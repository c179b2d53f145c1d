package api_test

import (
	"strings"
	"testing"
)

// TestRouting: an unknown route is 404, a known route with a method it
// does not serve is 405 naming the allowed methods, and a bad {id} is a
// problem naming "id".
func TestRouting(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		url := serve(t, dsn, "")
		cases := []struct {
			method, path string
			status       int
			allow        string // the Allow header of a 405 holds this
		}{
			{"GET", "/v1/nothing-here", 404, ""},
			{"GET", "/v2/jobs", 404, ""},
			{"POST", "/v1/jobs/1/explode", 404, ""},
			{"DELETE", "/v1/jobs", 405, "POST"},
			{"PUT", "/v1/jobs/1", 405, "GET"},
			{"GET", "/v1/jobs/1/cancel", 405, "POST"},
			{"PATCH", "/v1/workflows", 405, "GET"},
			{"POST", "/healthz", 405, "GET"},
		}
		for _, c := range cases {
			t.Run(c.method+" "+c.path, func(t *testing.T) {
				a := call(t, c.method, url+c.path, "", nil)
				if a.status != c.status {
					t.Fatalf("status %d, want %d: %s", a.status, c.status, a.body)
				}
				if c.allow != "" && !strings.Contains(a.header.Get("Allow"), c.allow) {
					t.Errorf("Allow %q lacks %s", a.header.Get("Allow"), c.allow)
				}
			})
		}
		for _, path := range []string{"/v1/jobs/abc", "/v1/jobs/0", "/v1/jobs/-3", "/v1/workflows/x"} {
			p := asProblem(t, must(t, 422, "GET", url+path, "", nil))
			if p.Field != "id" {
				t.Errorf("GET %s: field %q, want id", path, p.Field)
			}
		}
	})
}

// TestBadBodies: a body the API cannot take is refused with a problem
// naming the field at fault, and stores nothing.
func TestBadBodies(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		url := serve(t, dsn, "")
		must(t, 201, "POST", url+"/v1/templates", "name: t\nsteps:\n  - {id: s, log: hi}\n", map[string]string{"Content-Type": "application/yaml"})
		cases := []struct {
			name, path, body string
			status           int
			field            string
			detail           string // a substring
		}{
			{"unknown field", "/v1/jobs", `{"type":"noop","colour":"red"}`, 400, "colour", "unknown field"},
			{"wrong type", "/v1/jobs", `{"type":"noop","max_attempts":"three"}`, 400, "max_attempts", "must be int"},
			{"wrong type in a map", "/v1/jobs", `{"type":"noop","selector":{"site":1}}`, 400, "selector", "must be string"},
			{"missing type", "/v1/jobs", `{"params":{}}`, 422, "type", "required"},
			{"missing required param", "/v1/jobs", `{"type":"util.copy","params":{"from":"/a"}}`, 422, "params.to", "required"},
			{"unknown job type", "/v1/jobs", `{"type":"video.teleport"}`, 422, "type", "unknown job type"},
			{"malformed job type", "/v1/jobs", `{"type":"NO SPACES"}`, 422, "type", ""},
			{"priority out of range", "/v1/jobs", `{"type":"noop","priority":100000}`, 422, "priority", "between"},
			{"batch item at fault", "/v1/jobs/batch", `{"jobs":[{"type":"noop"},{"type":"nope.nope"}]}`, 422, "jobs[1].type", "unknown job type"},
			{"two JSON values", "/v1/jobs", `{"type":"noop"} {"type":"noop"}`, 400, "", "more than one"},
			{"empty body", "/v1/jobs", ``, 400, "", "empty body"},
			{"priority without value", "/v1/jobs/1/priority", `{}`, 422, "priority", "required"},
			{"workflow without template", "/v1/workflows", `{"name":"x"}`, 422, "template", "required"},
			{"workflow of unknown template", "/v1/workflows", `{"template":"nope"}`, 422, "template", "unknown template"},
			{"workflow unknown field", "/v1/workflows", `{"template":"t","argz":{}}`, 400, "argz", "unknown field"},
			{"workflow args not an object", "/v1/workflows", `{"template":"t","args":[1]}`, 422, "args", ""},
			{"workflow sub-start refused", "/v1/workflows", `{"template":"t","parent_id":4}`, 422, "parent_id", ""},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				a := call(t, "POST", url+c.path, c.body, nil)
				if c.body == "" { // call sends no content type without a body
					a = call(t, "POST", url+c.path, c.body, map[string]string{"Content-Type": "application/json"})
				}
				if a.status != c.status {
					t.Fatalf("status %d, want %d: %s", a.status, c.status, a.body)
				}
				p := asProblem(t, a)
				if p.Field != c.field {
					t.Errorf("field %q, want %q: %s", p.Field, c.field, a.body)
				}
				if !strings.Contains(p.Detail, c.detail) {
					t.Errorf("detail %q lacks %q", p.Detail, c.detail)
				}
			})
		}
		if n := count(t, url+"/v1/jobs"); n != 0 {
			t.Errorf("bad bodies stored %d jobs", n)
		}
		if n := count(t, url+"/v1/workflows"); n != 0 {
			t.Errorf("bad bodies started %d workflows", n)
		}
	})
}

// TestTemplateImportErrors: a template refused at import says, for each
// fault, its line, step and field, and imports nothing.
func TestTemplateImportErrors(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		url := serve(t, dsn, "")
		yaml := map[string]string{"Content-Type": "application/yaml"}
		src := "name: bad\nsteps:\n  - {id: a, log: hi}\n  - {id: b, job: noop, parms: {}}\n  - {id: c, job: video.teleport}\n"
		p := asProblem(t, must(t, 422, "POST", url+"/v1/templates", src, yaml))
		type want struct {
			line        int
			step, field string
			reason      string
		}
		wants := []want{{4, "b", "parms", "unknown field"}, {5, "c", "job", "unknown job type"}}
		if len(p.Errors) != len(wants) {
			t.Fatalf("%d errors, want %d: %+v", len(p.Errors), len(wants), p.Errors)
		}
		for i, w := range wants {
			e := p.Errors[i]
			if e.Line != w.line || e.Step != w.step || e.Field != w.field || !strings.Contains(e.Reason, w.reason) {
				t.Errorf("error %d: %+v, want line %d step %s field %s reason ~%q", i, e, w.line, w.step, w.field, w.reason)
			}
		}
		if p.Field != "parms" {
			t.Errorf("field %q, want the first fault's (parms)", p.Field)
		}
		must(t, 404, "GET", url+"/v1/templates/bad", "", nil)

		// Not YAML at all, and a media type the route does not take.
		if p := asProblem(t, must(t, 422, "POST", url+"/v1/templates", "name: [unclosed\n", yaml)); len(p.Errors) == 0 || p.Errors[0].Line == 0 {
			t.Errorf("YAML syntax error without a line: %+v", p)
		}
		asProblem(t, must(t, 415, "POST", url+"/v1/templates", "name: x", map[string]string{"Content-Type": "image/png"}))

		// The same source twice: created, then the same version again.
		good := "name: good\nsteps:\n  - {id: a, log: hi}\n"
		first := must(t, 201, "POST", url+"/v1/templates", good, yaml).object(t)
		again := must(t, 200, "POST", url+"/v1/templates", good, yaml).object(t)
		if first["created"] != true || again["created"] != false {
			t.Errorf("created %v then %v, want true then false", first["created"], again["created"])
		}
		v1 := first["template"].(map[string]any)["version"]
		v2 := again["template"].(map[string]any)["version"]
		if v1 != v2 {
			t.Errorf("re-import of the same source made version %v after %v", v2, v1)
		}
	})
}

// TestAuth: with a token configured, /v1 answers 401 (problem+json, a
// WWW-Authenticate challenge) without it or with a wrong one, and serves
// with the right one; /healthz stays open for load balancers.
func TestAuth(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		const token = "s3cret-token"
		url := serve(t, dsn, token)
		cases := []struct {
			name, authorization string
			status              int
		}{
			{"no header", "", 401},
			{"wrong token", "Bearer nope", 401},
			{"token without scheme", token, 401},
			{"token with a suffix", "Bearer " + token + "x", 401},
			{"basic scheme", "Basic " + token, 401},
			{"right token", "Bearer " + token, 201},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				h := map[string]string{}
				if c.authorization != "" {
					h["Authorization"] = c.authorization
				}
				a := must(t, c.status, "POST", url+"/v1/jobs", `{"type":"noop"}`, h)
				if c.status == 401 {
					asProblem(t, a)
					if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
					}
				}
			})
		}
		right := map[string]string{"Authorization": "Bearer " + token}
		list := must(t, 200, "GET", url+"/v1/jobs", "", right).object(t)
		if list["total"] != float64(1) {
			t.Errorf("%v jobs, want the 1 submitted with the right token", list["total"])
		}
		must(t, 401, "GET", url+"/v1/jobs", "", nil)
		for _, open := range []string{"/healthz", "/readyz"} {
			must(t, 200, "GET", url+open, "", nil)
		}
	})
}
