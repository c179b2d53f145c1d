package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/store"
)

// tmpl returns a template of name whose canonical form holds body.
func tmpl(name string, version int, body string) model.Template {
	return model.Template{
		Name: name, Version: version, Description: "about " + name,
		Source:    fmt.Sprintf("name: %s\nsteps: %s\n", name, body),
		Canonical: json.RawMessage(fmt.Sprintf(`{"name":%q,"steps":%q}`, name, body)),
	}
}

// putTemplate runs TemplatePut and fails the test on error or on an
// unexpected created.
func putTemplate(t *testing.T, s store.WorkflowStore, tpl model.Template, now time.Time, wantCreated bool) model.Template {
	t.Helper()
	got, created, err := s.TemplatePut(t.Context(), tpl, now)
	if err != nil {
		t.Fatalf("TemplatePut(%s v%d): %v", tpl.Name, tpl.Version, err)
	}
	if created != wantCreated {
		t.Fatalf("TemplatePut(%s v%d): created %v, want %v", tpl.Name, tpl.Version, created, wantCreated)
	}
	return got
}

// getTemplate runs TemplateGet and fails the test on error.
func getTemplate(t *testing.T, s store.WorkflowStore, name string, version int) model.Template {
	t.Helper()
	got, err := s.TemplateGet(t.Context(), name, version)
	if err != nil {
		t.Fatalf("TemplateGet(%s, %d): %v", name, version, err)
	}
	return got
}

// normTemplate returns tpl in a form that compares equal across engines.
func normTemplate(tpl model.Template) model.Template {
	tpl.Canonical = json.RawMessage(canonJSON(tpl.Canonical))
	tpl.CreatedAt = ms(tpl.CreatedAt)
	return tpl
}

// sameTemplate fails unless got and want are the same template version.
func sameTemplate(t *testing.T, what string, got, want model.Template) {
	t.Helper()
	if g, w := normTemplate(got), normTemplate(want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, g, w)
	}
}

// stored returns tpl as the store should hold it: at version and time.
func stored(tpl model.Template, version int, now time.Time) model.Template {
	tpl.Version = version
	tpl.CreatedAt = now
	return tpl
}

// testTemplatePut covers versioning and deduplication of TemplatePut.
func testTemplatePut(t *testing.T, open WorkflowOpener) {
	t.Run("NewName", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		in := tmpl("ingest", 0, "a")
		got := putTemplate(t, s, in, T0, true)
		want := stored(in, 1, T0)
		sameTemplate(t, "put", got, want)
		sameTemplate(t, "TemplateGet", getTemplate(t, s, "ingest", 1), want)
	})

	t.Run("NextVersion", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		putTemplate(t, s, tmpl("w", 0, "a"), T0, true)
		if got := putTemplate(t, s, tmpl("w", 0, "b"), at(time.Minute), true); got.Version != 2 {
			t.Fatalf("second content: version %d, want 2", got.Version)
		}
		// Only the latest version is compared: going back to the first
		// content is a new version.
		got := putTemplate(t, s, tmpl("w", 0, "a"), at(2*time.Minute), true)
		sameTemplate(t, "back to the first content", got, stored(tmpl("w", 0, "a"), 3, at(2*time.Minute)))
	})

	t.Run("SameAsLatest", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		first := putTemplate(t, s, tmpl("w", 0, "a"), T0, true)
		// Equal canonical bytes: not stored again, whatever the source says.
		again := tmpl("w", 0, "a")
		again.Source, again.Description = "# reformatted\n"+again.Source, "other words"
		got := putTemplate(t, s, again, at(time.Minute), false)
		sameTemplate(t, "re-import", got, first)
		_, err := s.TemplateGet(t.Context(), "w", 2)
		wantErr(t, "TemplateGet of a version never stored", err, model.ErrNotFound)
	})

	t.Run("ExplicitVersion", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		v5 := putTemplate(t, s, tmpl("w", 5, "a"), T0, true)
		sameTemplate(t, "explicit version", v5, stored(tmpl("w", 5, "a"), 5, T0))
		// The same version with the same content: that one, not created.
		sameTemplate(t, "same version, same content", putTemplate(t, s, tmpl("w", 5, "a"), at(time.Minute), false), v5)
		// The same version with other content: refused, nothing changed.
		_, _, err := s.TemplatePut(t.Context(), tmpl("w", 5, "b"), at(time.Minute))
		wantErr(t, "same version, other content", err, model.ErrConflict)
		sameTemplate(t, "after the refused put", getTemplate(t, s, "w", 5), v5)
		// Version 0 continues after the highest version.
		if got := putTemplate(t, s, tmpl("w", 0, "c"), at(2*time.Minute), true); got.Version != 6 {
			t.Errorf("version after 5: %d, want 6", got.Version)
		}
	})

	t.Run("OlderExplicitVersion", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		v1 := putTemplate(t, s, tmpl("w", 0, "a"), T0, true)
		putTemplate(t, s, tmpl("w", 0, "b"), at(time.Minute), true)
		sameTemplate(t, "existing older version", putTemplate(t, s, tmpl("w", 1, "a"), at(2*time.Minute), false), v1)
		_, _, err := s.TemplatePut(t.Context(), tmpl("w", 1, "c"), at(2*time.Minute))
		wantErr(t, "older version, other content", err, model.ErrConflict)
	})

	t.Run("NamesAreIndependent", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		putTemplate(t, s, tmpl("a", 0, "x"), T0, true)
		putTemplate(t, s, tmpl("a", 0, "y"), T0, true)
		// Same body as a's latest, other name: a new template.
		if got := putTemplate(t, s, tmpl("b", 0, "y"), T0, true); got.Version != 1 {
			t.Errorf("first version of b: %d, want 1", got.Version)
		}
	})
}

// testTemplateGet covers versions, the latest and missing templates.
func testTemplateGet(t *testing.T, open WorkflowOpener) {
	t.Parallel()
	s := open(t)
	v1 := putTemplate(t, s, tmpl("w", 0, "a"), T0, true)
	v2 := putTemplate(t, s, tmpl("w", 0, "b"), at(time.Minute), true)
	sameTemplate(t, "version 1", getTemplate(t, s, "w", 1), v1)
	sameTemplate(t, "version 2", getTemplate(t, s, "w", 2), v2)
	sameTemplate(t, "version 0 (latest)", getTemplate(t, s, "w", 0), v2)
	for _, tc := range []struct {
		name    string
		version int
	}{{"w", 3}, {"nope", 0}, {"nope", 1}, {"W", 0}} {
		_, err := s.TemplateGet(t.Context(), tc.name, tc.version)
		wantErr(t, fmt.Sprintf("TemplateGet(%s, %d)", tc.name, tc.version), err, model.ErrNotFound)
	}
}

// testTemplateList covers the latest version of every name, in byte order.
func testTemplateList(t *testing.T, open WorkflowOpener) {
	t.Run("Empty", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		list, err := s.TemplateList(t.Context())
		if err != nil || len(list) != 0 {
			t.Fatalf("TemplateList on an empty store = %v, %v", list, err)
		}
	})

	t.Run("LatestByName", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		// Byte order: "B" < "a" < "a-x" < "a.y" < "b". A locale collation
		// would give another order.
		want := map[string]model.Template{}
		for i, name := range []string{"b", "a.y", "B", "a", "a-x"} {
			for v := range i%3 + 1 {
				want[name] = putTemplate(t, s, tmpl(name, 0, fmt.Sprint(v)), at(time.Duration(i*10+v)*time.Second), true)
			}
		}
		list, err := s.TemplateList(t.Context())
		if err != nil {
			t.Fatalf("TemplateList: %v", err)
		}
		order := []string{"B", "a", "a-x", "a.y", "b"}
		if len(list) != len(order) {
			t.Fatalf("TemplateList: %d templates, want %d", len(list), len(order))
		}
		for i, name := range order {
			sameTemplate(t, "list["+fmt.Sprint(i)+"]", list[i], want[name])
		}
	})
}

// testTemplateDelete covers deletion of every version and its refusal
// while instances run.
func testTemplateDelete(t *testing.T, open WorkflowOpener) {
	t.Run("EveryVersion", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		putTemplate(t, s, tmpl("w", 0, "a"), T0, true)
		putTemplate(t, s, tmpl("w", 0, "b"), T0, true)
		keep := putTemplate(t, s, tmpl("keep", 0, "a"), T0, true)
		if err := s.TemplateDelete(t.Context(), "w"); err != nil {
			t.Fatalf("TemplateDelete: %v", err)
		}
		for _, v := range []int{0, 1, 2} {
			_, err := s.TemplateGet(t.Context(), "w", v)
			wantErr(t, fmt.Sprintf("TemplateGet(w, %d) after delete", v), err, model.ErrNotFound)
		}
		list, err := s.TemplateList(t.Context())
		if err != nil || len(list) != 1 {
			t.Fatalf("TemplateList after delete = %v, %v; want only keep", list, err)
		}
		sameTemplate(t, "other template", list[0], keep)
		wantErr(t, "second delete", s.TemplateDelete(t.Context(), "w"), model.ErrNotFound)
	})

	t.Run("Missing", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		wantErr(t, "TemplateDelete of an unknown name", s.TemplateDelete(t.Context(), "nope"), model.ErrNotFound)
	})

	t.Run("RefusedWhileInstancesRun", func(t *testing.T) {
		t.Parallel()
		s := open(t)
		putTemplate(t, s, tmpl("w", 0, "a"), T0, true)
		putTemplate(t, s, tmpl("other", 0, "a"), T0, true)
		// Final instances do not hold the template; instances of another
		// template do not either.
		endInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "done"}, model.InstanceSucceeded, T0)
		createInst(t, s, model.InstanceSpec{Template: "other", Version: 1, Name: "o"}, T0)
		running := parkInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "run"}, "w1", T0)
		pending := createInst(t, s, model.InstanceSpec{Template: "w", Version: 1, Name: "pend"}, T0)

		wantErr(t, "delete with a running and a pending instance", s.TemplateDelete(t.Context(), "w"), model.ErrConflict)
		advance(t, s, adv(running, model.InstanceSucceeded), at(time.Second))
		wantErr(t, "delete with a pending instance", s.TemplateDelete(t.Context(), "w"), model.ErrConflict)
		getTemplate(t, s, "w", 1) // still there

		held := claimAll(t, s, "w2", at(time.Second))
		for _, inst := range held {
			if inst.ID == pending.ID {
				advance(t, s, adv(inst, model.InstanceCanceled), at(2*time.Second))
			}
		}
		if err := s.TemplateDelete(t.Context(), "w"); err != nil {
			t.Fatalf("delete once every instance is final: %v", err)
		}
	})
}
