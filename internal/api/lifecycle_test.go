package api_test

import (
	"fmt"
	"strings"
	"testing"
)

// TestJobStatusCodes: the status of each job route on each outcome.
func TestJobStatusCodes(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		url := serve(t, dsn, "")
		queued := must(t, 201, "POST", url+"/v1/jobs", `{"type":"noop","priority":5}`, nil).id(t)
		got := must(t, 200, "GET", fmt.Sprintf("%s/v1/jobs/%d", url, queued), "", nil).object(t)
		if got["state"] != "queued" || got["priority"] != float64(5) {
			t.Fatalf("job %v", got)
		}
		asProblem(t, must(t, 404, "GET", url+"/v1/jobs/999999", "", nil))

		// Priority: 200 with the new value; a bad value 422; a missing job 404.
		p := must(t, 200, "POST", fmt.Sprintf("%s/v1/jobs/%d/priority", url, queued), `{"priority":9}`, nil).object(t)
		if p["priority"] != float64(9) {
			t.Fatalf("priority %v, want 9", p["priority"])
		}
		asProblem(t, must(t, 422, "POST", fmt.Sprintf("%s/v1/jobs/%d/priority", url, queued), `{"priority":-1}`, nil))
		asProblem(t, must(t, 404, "POST", url+"/v1/jobs/999999/priority", `{"priority":1}`, nil))

		// Cancel: a queued job is canceled at once; again is a no-op 200.
		for range 2 {
			c := must(t, 200, "POST", fmt.Sprintf("%s/v1/jobs/%d/cancel", url, queued), "", nil).object(t)
			if c["state"] != "canceled" {
				t.Fatalf("cancel of a queued job: %v", c)
			}
		}
		asProblem(t, must(t, 404, "POST", url+"/v1/jobs/999999/cancel", "", nil))
		// A canceled job's priority can no longer change.
		asProblem(t, must(t, 409, "POST", fmt.Sprintf("%s/v1/jobs/%d/priority", url, queued), `{"priority":1}`, nil))

		// A running job is asked to stop and stays running until its
		// processor hears it.
		running := must(t, 201, "POST", url+"/v1/jobs", `{"type":"noop"}`, nil).id(t)
		claimed := must(t, 200, "POST", url+"/v1/claims", `{"processor":"p1","slots":{"noop":1}}`, nil).object(t)
		if js := claimed["jobs"].([]any); len(js) != 1 || js[0].(map[string]any)["id"] != float64(running) {
			t.Fatalf("claim: %v", claimed)
		}
		c := must(t, 200, "POST", fmt.Sprintf("%s/v1/jobs/%d/cancel", url, running), "", nil).object(t)
		if c["state"] != "running" || c["cancel_requested"] != true {
			t.Fatalf("cancel of a running job: %v", c)
		}
		epoch := c["epoch"].(float64)
		done := must(t, 200, "POST", fmt.Sprintf("%s/v1/jobs/%d/complete", url, running), fmt.Sprintf(`{"epoch":%d,"error":"canceled"}`, int64(epoch)), nil).object(t)
		if done["state"] == "running" || done["state"] == "queued" {
			t.Fatalf("completion of a canceled job left it %v", done["state"])
		}
		// A stale epoch is refused with 409.
		asProblem(t, must(t, 409, "POST", fmt.Sprintf("%s/v1/jobs/%d/progress", url, running), fmt.Sprintf(`{"epoch":%d,"progress":50}`, int64(epoch)+1), nil))
	})
}

// TestWorkflowStatusCodes: the status of each workflow route on each
// outcome, and start by name returning the existing instance.
func TestWorkflowStatusCodes(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		url := serve(t, dsn, "")
		must(t, 201, "POST", url+"/v1/templates",
			"name: wf\nargs:\n  n: {type: int, default: 1}\nsteps:\n  - {id: a, job: noop}\n", map[string]string{"Content-Type": "application/yaml"})

		first := must(t, 201, "POST", url+"/v1/workflows", `{"template":"wf","name":"run-1","args":{"n":2}}`, nil)
		id := first.id(t)
		again := must(t, 200, "POST", url+"/v1/workflows", `{"template":"wf","name":"run-1","args":{"n":2}}`, nil)
		if again.id(t) != id {
			t.Fatalf("same name started instance %d after %d", again.id(t), id)
		}
		// Same name, other args: refused, naming the existing instance,
		// its state and the arg that differs.
		conflict := asProblem(t, must(t, 409, "POST", url+"/v1/workflows", `{"template":"wf","name":"run-1","args":{"n":3}}`, nil))
		if want := fmt.Sprintf(`"run-1" exists (id %d, pending) with different args (n)`, id); !strings.Contains(conflict.Detail, want) {
			t.Fatalf("same name, other args: detail %q, want it to say %s", conflict.Detail, want)
		}

		d := must(t, 200, "GET", fmt.Sprintf("%s/v1/workflows/%d", url, id), "", nil).object(t)
		inst, ok := d["instance"].(map[string]any)
		if !ok || inst["id"] != float64(id) || inst["state"] != "pending" {
			t.Fatalf("detail %v", d)
		}
		asProblem(t, must(t, 404, "GET", url+"/v1/workflows/999999", "", nil))

		byName := must(t, 200, "GET", url+"/v1/workflows?name=run-1", "", nil).object(t)
		if byName["total"] != float64(1) {
			t.Fatalf("by name: %v", byName)
		}
		if none := must(t, 200, "GET", url+"/v1/workflows?name=nope", "", nil).object(t); none["total"] != float64(0) {
			t.Fatalf("by unknown name: %v", none)
		}

		p := must(t, 200, "POST", fmt.Sprintf("%s/v1/workflows/%d/priority", url, id), `{"priority":7}`, nil).object(t)
		if p["priority"] != float64(7) {
			t.Fatalf("priority: %v", p)
		}
		asProblem(t, must(t, 422, "POST", fmt.Sprintf("%s/v1/workflows/%d/priority", url, id), `{"priority":100000}`, nil))
		asProblem(t, must(t, 404, "POST", url+"/v1/workflows/999999/priority", `{"priority":1}`, nil))

		c := must(t, 200, "POST", fmt.Sprintf("%s/v1/workflows/%d/cancel", url, id), "", nil).object(t)
		if c["cancel_requested"] != true && c["state"] != "canceled" {
			t.Fatalf("cancel: %v", c)
		}
		asProblem(t, must(t, 404, "POST", url+"/v1/workflows/999999/cancel", "", nil))

		// Template routes: list, get, missing, delete.
		must(t, 200, "GET", url+"/v1/templates/wf", "", nil)
		asProblem(t, must(t, 404, "GET", url+"/v1/templates/nope", "", nil))
		asProblem(t, must(t, 422, "GET", url+"/v1/templates/wf?version=x", "", nil))
	})
}

// TestIdempotency: a repeated Idempotency-Key returns the first answer and
// creates nothing twice, on each kind of route that takes one.
func TestIdempotency(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		url := serve(t, dsn, "")
		key := func(k string) map[string]string { return map[string]string{"Idempotency-Key": k} }

		t.Run("job submit", func(t *testing.T) {
			a := must(t, 201, "POST", url+"/v1/jobs", `{"type":"noop","priority":3}`, key("job-1"))
			b := must(t, 200, "POST", url+"/v1/jobs", `{"type":"noop","priority":3}`, key("job-1"))
			if a.id(t) != b.id(t) {
				t.Fatalf("ids %d then %d", a.id(t), b.id(t))
			}
			// Another body under the same key is refused, as every other
			// route refuses it, naming the key; nothing is created.
			for _, path := range []string{"/v1/jobs", "/v1/jobs/batch"} {
				body := `{"type":"noop","priority":8}`
				if path == "/v1/jobs/batch" {
					body = `{"jobs":[{"type":"noop","priority":8}]}`
					must(t, 201, "POST", url+path, `{"jobs":[{"type":"noop","priority":3}]}`, key("job-2"))
				}
				k := map[string]string{"/v1/jobs": "job-1", "/v1/jobs/batch": "job-2"}[path]
				p := asProblem(t, must(t, 422, "POST", url+path, body, key(k)))
				if p.Field != "Idempotency-Key" {
					t.Errorf("POST %s, other body under a used key: field %q, want Idempotency-Key", path, p.Field)
				}
			}
			must(t, 200, "POST", url+"/v1/jobs/batch", `{"jobs":[{"type":"noop","priority":3}]}`, key("job-2"))
			if n := count(t, url+"/v1/jobs?type=noop"); n != 2 {
				t.Fatalf("%d jobs, want 2 (one per key)", n)
			}
		})

		t.Run("job batch", func(t *testing.T) {
			body := `{"jobs":[{"type":"util.mkdir","params":{"path":"/tmp/a"}},{"type":"util.mkdir","params":{"path":"/tmp/b"}}]}`
			a := must(t, 201, "POST", url+"/v1/jobs/batch", body, key("batch-1")).object(t)
			b := must(t, 200, "POST", url+"/v1/jobs/batch", body, key("batch-1")).object(t)
			if fmt.Sprint(ids(a["jobs"])) != fmt.Sprint(ids(b["jobs"])) {
				t.Fatalf("ids %v then %v", ids(a["jobs"]), ids(b["jobs"]))
			}
			if n := count(t, url+"/v1/jobs?type=util.mkdir"); n != 2 {
				t.Fatalf("%d jobs, want 2", n)
			}
		})

		t.Run("workflow start", func(t *testing.T) {
			must(t, 201, "POST", url+"/v1/templates", "name: idem\nsteps:\n  - {id: a, log: hi}\n", map[string]string{"Content-Type": "application/yaml"})
			a := must(t, 201, "POST", url+"/v1/workflows", `{"template":"idem"}`, key("wf-1"))
			b := must(t, 200, "POST", url+"/v1/workflows", `{"template":"idem"}`, key("wf-1"))
			if a.id(t) != b.id(t) {
				t.Fatalf("ids %d then %d", a.id(t), b.id(t))
			}
			if name := a.object(t)["name"]; name != "idem/wf-1" {
				t.Errorf("name %v: the key names an unnamed start", name)
			}
			if n := count(t, url+"/v1/workflows?template=idem"); n != 1 {
				t.Fatalf("%d instances, want 1", n)
			}
			// A name is idempotent for the same args; other args are a
			// conflict naming the existing instance and its state.
			must(t, 201, "POST", url+"/v1/templates", "name: idem2\nargs:\n  x: {type: string, default: a}\nsteps:\n  - {id: a, log: hi}\n", map[string]string{"Content-Type": "application/yaml"})
			n1 := must(t, 201, "POST", url+"/v1/workflows", `{"template":"idem2","name":"n1","args":{"x":"a"}}`, nil)
			must(t, 200, "POST", url+"/v1/workflows", `{"template":"idem2","name":"n1"}`, nil)
			p := asProblem(t, must(t, 409, "POST", url+"/v1/workflows", `{"template":"idem2","name":"n1","args":{"x":"b"}}`, nil))
			if want := fmt.Sprintf("id %d", n1.id(t)); !strings.Contains(p.Detail, want) || !strings.Contains(p.Detail, "different args (x)") {
				t.Errorf("conflict detail %q: want the instance (%s) and the differing arg", p.Detail, want)
			}
		})

		t.Run("release (stored answer)", func(t *testing.T) {
			id := must(t, 201, "POST", url+"/v1/jobs", `{"type":"util.checksum","params":{"path":"/tmp/x"}}`, nil).id(t)
			cl := must(t, 200, "POST", url+"/v1/claims", `{"processor":"p1","slots":{"util.checksum":1}}`, nil).object(t)
			j := cl["jobs"].([]any)[0].(map[string]any)
			if j["id"] != float64(id) {
				t.Fatalf("claimed %v, want job %d", j["id"], id)
			}
			body := fmt.Sprintf(`{"epoch":%d}`, int64(j["epoch"].(float64)))
			path := fmt.Sprintf("%s/v1/jobs/%d/release", url, id)
			first := must(t, 200, "POST", path, body, key("rel-1"))
			// The first answer is replayed byte for byte, not computed
			// again (the job has changed since: it is queued).
			again := must(t, 200, "POST", path, body, key("rel-1"))
			if string(again.body) != string(first.body) || again.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("replay %q (replayed %q), want %q", again.body, again.header.Get("Idempotent-Replayed"), first.body)
			}
			// Another request under a used key is refused, naming the key.
			p := asProblem(t, must(t, 422, "POST", path, `{"epoch":99}`, key("rel-1")))
			if p.Field != "Idempotency-Key" {
				t.Errorf("field %q, want Idempotency-Key", p.Field)
			}
		})

		t.Run("job retry", func(t *testing.T) {
			id := must(t, 201, "POST", url+"/v1/jobs", `{"type":"util.delete","params":{"path":"/tmp/r"},"max_attempts":1}`, nil).id(t)
			cl := must(t, 200, "POST", url+"/v1/claims", `{"processor":"p1","slots":{"util.delete":1}}`, nil).object(t)
			j := cl["jobs"].([]any)[0].(map[string]any)
			done := fmt.Sprintf(`{"epoch":%d,"error":"no space"}`, int64(j["epoch"].(float64)))
			must(t, 200, "POST", fmt.Sprintf("%s/v1/jobs/%d/complete", url, id), done, nil)
			path := fmt.Sprintf("%s/v1/jobs/%d/retry", url, id)
			first := must(t, 200, "POST", path, "", key("retry-1")).object(t)
			if first["state"] != "queued" || first["attempt"] != float64(0) {
				t.Fatalf("retried job: %v", first)
			}
			// The same key again: the first answer, no second retry.
			again := must(t, 200, "POST", path, "", key("retry-1"))
			if again.header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("repeat of a retry not replayed: %s", again.body)
			}
			// Another retry of the queued job is a conflict naming the state.
			if p := asProblem(t, must(t, 409, "POST", path, "", key("retry-2"))); !strings.Contains(p.Detail, "queued") {
				t.Errorf("conflict detail %q", p.Detail)
			}
			asProblem(t, must(t, 404, "POST", url+"/v1/jobs/999999/retry", "", nil))
			asProblem(t, must(t, 404, "POST", url+"/v1/workflows/999999/retry", "", nil))
		})

		t.Run("key too long", func(t *testing.T) {
			long := strings.Repeat("k", 201)
			p := asProblem(t, must(t, 400, "POST", url+"/v1/jobs/1/release", `{"epoch":1}`, key(long)))
			if p.Field != "Idempotency-Key" {
				t.Errorf("field %q", p.Field)
			}
			// Submits keep the key on the job: refused as well (on
			// PostgreSQL a key of kilobytes was an internal error, on
			// SQLite it was stored).
			before := count(t, url+"/v1/jobs")
			for _, path := range []string{"/v1/jobs", "/v1/jobs/batch"} {
				body := `{"type":"noop"}`
				if path == "/v1/jobs/batch" {
					body = `{"jobs":[{"type":"noop"}]}`
				}
				a := call(t, "POST", url+path, body, key(strings.Repeat("0123456789abcdef", 256)))
				if a.status != 400 && a.status != 422 {
					t.Fatalf("POST %s with a 4 kB Idempotency-Key: %d %s, want 400 or 422", path, a.status, a.body)
				}
				if p := asProblem(t, a); p.Field != "Idempotency-Key" {
					t.Errorf("POST %s: field %q, want Idempotency-Key", path, p.Field)
				}
			}
			if n := count(t, url+"/v1/jobs"); n != before {
				t.Errorf("refused submits stored %d jobs", n-before)
			}
		})
	})
}

// ids returns the ids of a JSON list of objects.
func ids(v any) []any {
	var out []any
	for _, x := range v.([]any) {
		out = append(out, x.(map[string]any)["id"])
	}
	return out
}
