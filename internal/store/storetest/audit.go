package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// AuditOpener returns a fresh, empty, migrated store.AuditStore whose
// cleanup is registered on t.
type AuditOpener func(t *testing.T) store.AuditStore

// RunAudit runs the conformance suite of store.AuditStore: appended
// entries read back whole, newest first; the time, principal and route
// filters; paging with the id cursor while Total counts every match; the
// field bound; and the bounded purge of old entries.
func RunAudit(t *testing.T, open AuditOpener) {
	t.Helper()
	for _, c := range []struct {
		name string
		run  func(t *testing.T, s store.AuditStore)
	}{
		{"AppendList", testAuditAppendList},
		{"Filters", testAuditFilters},
		{"Paging", testAuditPaging},
		{"Purge", testAuditPurge},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, open(t))
		})
	}
}

// auditAppend appends entries, failing the test on an error.
func auditAppend(t *testing.T, s store.AuditStore, es ...model.AuditEntry) {
	t.Helper()
	if err := s.AuditAppend(t.Context(), es); err != nil {
		t.Fatalf("AuditAppend: %v", err)
	}
}

// auditList lists, failing the test on an error.
func auditList(t *testing.T, s store.AuditStore, f model.AuditFilter) model.Page[model.AuditEntry] {
	t.Helper()
	p, err := s.AuditList(t.Context(), f)
	if err != nil {
		t.Fatalf("AuditList(%+v): %v", f, err)
	}
	return p
}

// auditTargets returns the targets of entries, in order.
func auditTargets(es []model.AuditEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Target
	}
	return out
}

// auditFixture is six calls by three principals on three routes, one a
// minute from T0, targets t1..t6.
func auditFixture(t *testing.T, s store.AuditStore) {
	t.Helper()
	who := []struct {
		p     string
		role  model.Role
		route string
	}{
		{"ops", model.RoleOperator, "POST /v1/jobs"},
		{"root", model.RoleAdmin, "DELETE /v1/templates/{name}"},
		{"ops", model.RoleOperator, "POST /v1/jobs/{id}/cancel"},
		{"anonymous", "", "POST /v1/jobs"},
		{"root", model.RoleAdmin, "POST /v1/jobs"},
		{"ops", model.RoleOperator, "POST /v1/jobs"},
	}
	for i, w := range who {
		method, _, _ := strings.Cut(w.route, " ")
		auditAppend(t, s, model.AuditEntry{
			At: at(time.Duration(i) * time.Minute), Principal: w.p, Role: w.role, Method: method,
			Route: w.route, Target: "t" + string(rune('1'+i)), Status: 200, Outcome: "ok",
		})
	}
}

func testAuditAppendList(t *testing.T, s store.AuditStore) {
	if p := auditList(t, s, model.AuditFilter{}); len(p.Items) != 0 || p.Total != 0 {
		t.Fatalf("AuditList of an empty store = %+v, want nothing", p)
	}
	if err := s.AuditAppend(t.Context(), nil); err != nil {
		t.Fatalf("AuditAppend(nil) = %v, want nil", err)
	}
	want := []model.AuditEntry{
		{At: at(1500 * time.Millisecond), Principal: "ops", Role: model.RoleOperator, Method: "POST", Route: "POST /v1/jobs",
			Status: 201, Remote: "192.0.2.7:51234", RequestID: "r-1", Outcome: "ok"},
		{At: at(2 * time.Second), Principal: "anonymous", Method: "DELETE", Route: "DELETE /v1/templates/{name}",
			Target: "name=ingest", Status: 401, Remote: "[2001:db8::1]:443", Outcome: "unauthorized"},
	}
	auditAppend(t, s, want...)
	p := auditList(t, s, model.AuditFilter{})
	if p.Total != 2 || len(p.Items) != 2 {
		t.Fatalf("AuditList = %d items of %d, want 2 of 2", len(p.Items), p.Total)
	}
	if p.Items[0].ID <= p.Items[1].ID || p.Items[1].ID <= 0 {
		t.Fatalf("ids %d, %d: want positive, newest first", p.Items[0].ID, p.Items[1].ID)
	}
	for i, got := range p.Items {
		w := want[len(want)-1-i]
		w.ID, w.At = got.ID, ms(w.At)
		got.At = ms(got.At)
		if got != w {
			t.Fatalf("entry %d reads back\n %+v\nwant\n %+v", i, got, w)
		}
	}
	// Every text field is bounded; a cut keeps whole characters.
	long := strings.Repeat("é", store.MaxAuditField) // 2 bytes a character
	auditAppend(t, s, model.AuditEntry{At: at(time.Minute), Principal: "ops", Method: "POST", Route: "POST /v1/jobs", Target: long, Status: 200})
	got := auditList(t, s, model.AuditFilter{Limit: 1}).Items[0]
	if len(got.Target) > store.MaxAuditField || !strings.HasPrefix(long, got.Target) || len(got.Target) < store.MaxAuditField-1 {
		t.Fatalf("a %d-byte target reads back with %d bytes", len(long), len(got.Target))
	}
}

func testAuditFilters(t *testing.T, s store.AuditStore) {
	auditFixture(t, s)
	for _, c := range []struct {
		name string
		f    model.AuditFilter
		want []string
	}{
		{"none", model.AuditFilter{}, []string{"t6", "t5", "t4", "t3", "t2", "t1"}},
		{"since inclusive", model.AuditFilter{Since: at(3 * time.Minute)}, []string{"t6", "t5", "t4"}},
		{"until exclusive", model.AuditFilter{Until: at(2 * time.Minute)}, []string{"t2", "t1"}},
		{"window", model.AuditFilter{Since: at(time.Minute), Until: at(4 * time.Minute)}, []string{"t4", "t3", "t2"}},
		{"principal", model.AuditFilter{Principal: "ops"}, []string{"t6", "t3", "t1"}},
		{"route", model.AuditFilter{Route: "POST /v1/jobs"}, []string{"t6", "t5", "t4", "t1"}},
		{"principal and route", model.AuditFilter{Principal: "root", Route: "POST /v1/jobs"}, []string{"t5"}},
		{"all", model.AuditFilter{Principal: "ops", Route: "POST /v1/jobs", Since: at(time.Minute), Until: at(6 * time.Minute)}, []string{"t6"}},
		{"route is exact", model.AuditFilter{Route: "POST /v1/jobs/"}, []string{}},
		{"principal is exact", model.AuditFilter{Principal: "op"}, []string{}},
		{"empty window", model.AuditFilter{Since: at(time.Hour)}, []string{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := auditList(t, s, c.f)
			if got := auditTargets(p.Items); !slices.Equal(got, c.want) || p.Total != len(c.want) {
				t.Fatalf("AuditList(%+v) = %v of %d, want %v of %d", c.f, got, p.Total, c.want, len(c.want))
			}
		})
	}
}

func testAuditPaging(t *testing.T, s store.AuditStore) {
	auditFixture(t, s)
	var got []string
	f := model.AuditFilter{Route: "POST /v1/jobs", Limit: 3}
	for range 10 {
		p := auditList(t, s, f)
		if p.Total != 4 {
			t.Fatalf("page after %d: Total %d, want 4 (every match, not the page)", f.Before, p.Total)
		}
		got = append(got, auditTargets(p.Items)...)
		if len(p.Items) < f.Limit {
			break
		}
		f.Before = p.Items[len(p.Items)-1].ID
	}
	if want := []string{"t6", "t5", "t4", "t1"}; !slices.Equal(got, want) {
		t.Fatalf("pages of 3 = %v, want %v", got, want)
	}
	if p := auditList(t, s, model.AuditFilter{Limit: 1 << 30}); len(p.Items) != 6 {
		t.Fatalf("a limit past the bound lists %d, want all 6", len(p.Items))
	}
}

func testAuditPurge(t *testing.T, s store.AuditStore) {
	auditFixture(t, s)
	ctx := t.Context()
	// Entries before T0+4m are t1..t4: the purge takes them oldest first,
	// at most the limit a call.
	if n, err := s.AuditPurge(ctx, at(4*time.Minute), 3); err != nil || n != 3 {
		t.Fatalf("AuditPurge(limit 3) = %d, %v; want 3", n, err)
	}
	if got := auditTargets(auditList(t, s, model.AuditFilter{}).Items); !slices.Equal(got, []string{"t6", "t5", "t4"}) {
		t.Fatalf("after the first purge: %v, want the oldest three gone", got)
	}
	if n, err := s.AuditPurge(ctx, at(4*time.Minute), 3); err != nil || n != 1 {
		t.Fatalf("AuditPurge again = %d, %v; want the 1 left before the time", n, err)
	}
	if n, err := s.AuditPurge(ctx, at(4*time.Minute), 3); err != nil || n != 0 {
		t.Fatalf("AuditPurge a third time = %d, %v; want 0", n, err)
	}
	// A purged id is never handed out again: the cursor stays valid.
	p := auditList(t, s, model.AuditFilter{})
	last := p.Items[0].ID
	auditAppend(t, s, model.AuditEntry{At: at(10 * time.Minute), Principal: "ops", Method: "POST", Route: "POST /v1/jobs", Target: "t7", Status: 200})
	if p := auditList(t, s, model.AuditFilter{Limit: 1}); p.Items[0].ID <= last || p.Total != 3 {
		t.Fatalf("after the purge a new entry has id %d (last was %d), total %d; want a higher id, 3", p.Items[0].ID, last, p.Total)
	}
}
