package api_test

import (
	"testing"
)

// TestETag: a GET answers a weak ETag that depends only on the body; the
// same tag in If-None-Match is a 304 without a body, any change of state a
// new tag and a 200; an error answer carries no tag.
func TestETag(t *testing.T) {
	engines(t, func(t *testing.T, dsn string) {
		url := serve(t, dsn, "")
		first := must(t, 200, "GET", url+"/v1/jobs?limit=5", "", nil)
		tag := first.header.Get("ETag")
		if len(tag) < 10 || tag[:3] != `W/"` {
			t.Fatalf("ETag %q, want a weak tag", tag)
		}
		if cc := first.header.Get("Cache-Control"); cc != "no-cache" {
			t.Errorf("Cache-Control %q, want no-cache", cc)
		}
		cases := []struct {
			name, inm string
			status    int
		}{
			{"same tag", tag, 304},
			{"same tag, strong form", tag[2:], 304},
			{"among others", `W/"nope", ` + tag, 304},
			{"any", "*", 304},
			{"other tag", `W/"nope"`, 200},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				a := must(t, c.status, "GET", url+"/v1/jobs?limit=5", "", map[string]string{"If-None-Match": c.inm})
				if c.status == 304 && len(a.body) != 0 {
					t.Errorf("304 with a body: %q", a.body)
				}
				if a.header.Get("ETag") != tag {
					t.Errorf("ETag %q, want %q", a.header.Get("ETag"), tag)
				}
			})
		}
		must(t, 201, "POST", url+"/v1/jobs", `{"type":"noop"}`, nil)
		after := must(t, 200, "GET", url+"/v1/jobs?limit=5", "", map[string]string{"If-None-Match": tag})
		if after.header.Get("ETag") == tag || after.header.Get("ETag") == "" {
			t.Errorf("ETag after a submit %q, want a new one (was %q)", after.header.Get("ETag"), tag)
		}
		missing := must(t, 404, "GET", url+"/v1/jobs/999999", "", nil)
		if missing.header.Get("ETag") != "" {
			t.Errorf("a 404 has ETag %q", missing.header.Get("ETag"))
		}
	})
}
