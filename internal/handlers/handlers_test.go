package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/dpe-engine/dpe/internal/jobtype"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/paths"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bundle is what a handler test needs: an allowed root, a directory
// outside it and the handlers confined to the root.
type bundle struct {
	root, outside string
	h             map[string]Handler
}

func setup(t *testing.T) bundle {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := bundle{root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{b.root, b.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	g, err := paths.NewGuard([]string{b.root})
	if err != nil {
		t.Fatal(err)
	}
	b.h = Builtins(Config{Guard: g, Exec: testExecPolicy(t, b.root)})
	return b
}

// progress records the reports of one task.
type progress struct {
	mu      sync.Mutex
	percent []int
}

func (p *progress) report(pct int, _ string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.percent = append(p.percent, pct)
}

func (p *progress) reports() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.percent)
}

// task builds a Task of type typ with params marshalled from v (a string
// is taken as JSON as it is).
func task(t *testing.T, typ string, v any, pr *progress) Task {
	t.Helper()
	var raw []byte
	if s, ok := v.(string); ok {
		raw = []byte(s)
	} else {
		var err error
		if raw, err = json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	}
	tk := Task{ID: 1, Type: typ, Params: raw, Attempt: 1}
	if pr != nil {
		tk.Progress = pr.report
	}
	return tk
}

// run runs a job of type typ to its end.
func (b bundle) run(t *testing.T, typ string, params any) (any, error) {
	t.Helper()
	return b.h[typ].Run(context.Background(), task(t, typ, params, nil))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// listDir returns the names in dir, sorted.
func listDir(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

func TestBuiltinsMatchSpecs(t *testing.T) {
	var specs []string
	unavailable := Unavailable(Config{}) // the ffmpeg types, when it is missing
	for name := range jobtype.Builtins() {
		if unavailable[name] == "" {
			specs = append(specs, name)
		}
	}
	sort.Strings(specs)
	keys := func(m map[string]Handler) []string {
		var k []string
		for name, h := range m {
			if h == nil {
				t.Errorf("handler %q is nil", name)
			}
			k = append(k, name)
		}
		sort.Strings(k)
		return k
	}
	if got := keys(Builtins(Config{Exec: ExecPolicy{Allow: []string{"/bin/true"}}})); !slices.Equal(got, specs) {
		t.Errorf("Builtins keys = %v, want %v", got, specs)
	}
	want := slices.DeleteFunc(slices.Clone(specs), func(s string) bool { return s == jobtype.Exec })
	if got := keys(Builtins(Config{})); !slices.Equal(got, want) {
		t.Errorf("Builtins without exec = %v, want %v", got, want)
	}
}

func TestPermanent(t *testing.T) {
	base := errors.New("boom")
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) != nil")
	}
	if IsPermanent(base) || IsPermanent(nil) {
		t.Error("plain error is permanent")
	}
	p := Permanent(base)
	if !IsPermanent(p) || !errors.Is(p, base) || p.Error() != "boom" {
		t.Errorf("Permanent(boom) = %v", p)
	}
	if wrapped := fmt.Errorf("job 3: %w", p); !IsPermanent(wrapped) {
		t.Error("wrapping loses Permanent")
	}
	if Permanent(p) != p {
		t.Error("Permanent(Permanent(x)) wraps twice")
	}
	var h Handler = HandlerFunc(func(ctx context.Context, t Task) (any, error) { return t.ID, nil })
	if got, _ := h.Run(context.Background(), Task{ID: 7}); got != int64(7) {
		t.Errorf("HandlerFunc.Run = %v", got)
	}
}

// Bad params fail at once: a retry would get the same params.
func TestBadParamsArePermanent(t *testing.T) {
	b := setup(t)
	tests := []struct {
		typ, params string
	}{
		{jobtype.Noop, `{"sleep":"soon"}`},
		{jobtype.Noop, `[1]`},
		{jobtype.Copy, `{"from":"/a"}`},
		{jobtype.Move, `{"from":"/a","to":"/b","extra":1}`},
		{jobtype.Delete, `{"path":3}`},
		{jobtype.Checksum, `{"path":"/a","algorithm":"crc32"}`},
		{jobtype.Mkdir, `{}`},
		{jobtype.Exec, `{"argv":[]}`},
		{jobtype.Exec, `{"argv":["true"],"env":["NOEQUALS"]}`},
	}
	for _, tt := range tests {
		_, err := b.run(t, tt.typ, tt.params)
		if !IsPermanent(err) || !errors.Is(err, model.ErrInvalid) {
			t.Errorf("%s %s: err = %v, want a permanent invalid-input error", tt.typ, tt.params, err)
		}
	}
}

// Every path param goes through the guard.
func TestPathEscapeRefused(t *testing.T) {
	b := setup(t)
	secret := filepath.Join(b.outside, "secret")
	writeFile(t, secret, "keep")
	inside := filepath.Join(b.root, "f")
	writeFile(t, inside, "data")
	if err := os.Symlink(b.outside, filepath.Join(b.root, "link")); err != nil {
		t.Fatal(err)
	}
	escape := b.root + "/../outside/secret"
	viaLink := b.root + "/link/new"
	tests := []struct {
		typ    string
		params any
	}{
		{jobtype.Copy, map[string]any{"from": escape, "to": inside + "2"}},
		{jobtype.Copy, map[string]any{"from": inside, "to": viaLink}},
		{jobtype.Move, map[string]any{"from": inside, "to": viaLink}},
		{jobtype.Move, map[string]any{"from": escape, "to": inside + "3"}},
		{jobtype.Delete, map[string]any{"path": escape}},
		{jobtype.Delete, map[string]any{"path": b.root + "/link"}},
		{jobtype.Checksum, map[string]any{"path": escape}},
		{jobtype.Mkdir, map[string]any{"path": viaLink}},
		{jobtype.Exec, map[string]any{"argv": []string{"true"}, "dir": b.outside}},
		{jobtype.Copy, map[string]any{"from": "f", "to": inside + "4"}}, // relative
	}
	for _, tt := range tests {
		_, err := b.run(t, tt.typ, tt.params)
		if !IsPermanent(err) || !errors.Is(err, paths.ErrOutsideRoots) && !errors.Is(err, paths.ErrRelative) {
			t.Errorf("%s %v: err = %v, want a permanent path error", tt.typ, tt.params, err)
		}
	}
	if got := listDir(t, b.outside); !slices.Equal(got, []string{"secret"}) {
		t.Errorf("outside holds %v after refused jobs", got)
	}
	if got := readFile(t, inside); got != "data" {
		t.Errorf("inside file changed to %q", got)
	}
}
