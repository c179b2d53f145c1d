package api

import (
	"errors"
	"net/url"
	"reflect"
	"strconv"
	"testing"

	"github.com/dpe-engine/dpe/internal/client"
	"github.com/dpe-engine/dpe/internal/model"
)

// FuzzAuditFilter reads a fuzzed query string as GET /v1/audit does: a
// refusal is a model.ErrInvalid naming a field; an accepted filter,
// encoded again by the client's AuditQuery, reads back to the same filter.
func FuzzAuditFilter(f *testing.F) {
	for _, s := range []string{
		"since=2026-01-02T03:04:05Z&until=2026-01-03T00:00:00.5%2B02:00&principal=ops&route=POST+%2Fv1%2Fjobs&limit=10&cursor=12",
		"route=DELETE%20/v1/templates/%7Bname%7D", "route=GET+/v1/jobs", "limit=0", "limit=1001", "cursor=0", "principal=",
		"who=me", "limit=1&limit=2", "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "since=0000-01-01T00:00:00%2B01:00",
		"principal=-", "%zz", "route=POST+/a%0Ab",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return // net/http would answer 400 before the handler
		}
		got, err := auditFilter(q)
		if err != nil {
			var fe *model.FieldError
			if !errors.Is(err, model.ErrInvalid) || !errors.As(err, &fe) || fe.Field == "" {
				t.Fatalf("auditFilter(%q): %v, want an ErrInvalid naming a field", raw, err)
			}
			return
		}
		if got.Limit < 1 || got.Limit > 1000 || got.Before < 0 {
			t.Fatalf("auditFilter(%q) = %+v: limit or cursor out of bounds", raw, got)
		}
		cq := client.AuditQuery{Since: got.Since, Until: got.Until, Principal: got.Principal, Route: got.Route, Limit: got.Limit}
		if got.Before != 0 {
			cq.Cursor = strconv.FormatInt(got.Before, 10)
		}
		q2, err := url.ParseQuery(cq.Encode())
		if err != nil {
			t.Fatalf("%q → %q: %v", raw, cq.Encode(), err)
		}
		back, err := auditFilter(q2)
		if err != nil {
			t.Fatalf("%q → %+v → %q refused: %v", raw, got, cq.Encode(), err)
		}
		if !back.Since.Equal(got.Since) || !back.Until.Equal(got.Until) {
			t.Fatalf("%q → %q: times %v %v → %v %v", raw, cq.Encode(), got.Since, got.Until, back.Since, back.Until)
		}
		back.Since, back.Until = got.Since, got.Until
		if !reflect.DeepEqual(back, got) {
			t.Fatalf("%q → %+v → %q → %+v", raw, got, cq.Encode(), back)
		}
	})
}
