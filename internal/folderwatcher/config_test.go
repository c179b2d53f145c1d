package folderwatcher

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dpe-engine/dpe/internal/model"
)

func TestConfigYAML(t *testing.T) {
	dir := t.TempDir()
	// The shape of DESIGN §9.
	doc := `
folder_watchers:
  - name: inbox
    path: ` + dir + `
    include: ["*.wav", "*.mp3"]
    exclude: ["*.part"]
    recursive: true
    poll: 2s
    stable_for: 5s
    on:
      created: {template: ingest, args: {path: "${{ event.path }}"}}
      updated: {template: ingest, args: {path: "${{ event.path }}"}, priority: 7}
      deleted: {template: forget, args: {path: "${{ event.path }}"}}
    first_start: baseline
    dry_run: true
    full_pass_every: 20
`
	var f struct {
		FolderWatchers []Config `yaml:"folder_watchers"`
	}
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatal(err)
	}
	c := f.FolderWatchers[0]
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Poll != 2*time.Second || c.StableFor != 5*time.Second || !c.Recursive || c.FullPassEvery != 20 ||
		c.FirstStart != FirstStartBaseline || !c.DryRun || c.On["updated"].Priority != 7 ||
		c.On["created"].Args["path"] != "${{ event.path }}" {
		t.Fatalf("decoded %+v", c)
	}
	on := c.actions()
	if on["deleted"].Template != "forget" || on["created"].Args["path"] != "${{ event.path }}" {
		t.Fatalf("actions = %+v", on)
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Name: "x", Path: "."}
	d, err := c.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(d.Path) || d.Poll != DefaultPoll || d.StableFor != DefaultStableFor ||
		d.FullPassEvery != DefaultFullPassEvery || d.FirstStart != FirstStartFire {
		t.Fatalf("defaults = %+v", d)
	}
	// Another readiness rule replaces the default stable_for.
	for _, c := range []Config{{Path: ".", MinAge: time.Minute}, {Path: ".", DoneMarker: ".done"}} {
		d, _ := c.withDefaults()
		if d.StableFor != 0 {
			t.Fatalf("%+v: stable_for defaulted beside another rule", c)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ok := func() Config { return testConfig(dir) }
	cases := []struct {
		name string
		mut  func(c *Config)
		want string
	}{
		{"missing folder", func(c *Config) { c.Path = "/x" }, "folder_watchers[inbox].path: /x: no such directory"},
		{"file as folder", func(c *Config) { c.Path = file }, "folder_watchers[inbox].path: " + file + ": not a directory"},
		{"no path", func(c *Config) { c.Path = "" }, "folder_watchers[inbox].path: missing"},
		{"no name", func(c *Config) { c.Name = "" }, "folder_watchers[].name: missing"},
		{"bad name", func(c *Config) { c.Name = "in box" }, `folder_watchers[in box].name: "in box": want`},
		{"bad glob", func(c *Config) { c.Include = []string{"*.wav", "[a-"} }, `folder_watchers[inbox].include[1]: "[a-": bad pattern: syntax error in pattern`},
		{"absolute glob", func(c *Config) { c.Exclude = []string{"/tmp/*"} }, `folder_watchers[inbox].exclude[0]: "/tmp/*": must be relative`},
		{"double star", func(c *Config) { c.Include = []string{"**/*.wav"} }, `include[0]: "**/*.wav": ** is not supported`},
		{"unknown event", func(c *Config) { c.On["moved"] = Action{Template: "x"} }, "folder_watchers[inbox].on.moved: unknown event"},
		{"no template", func(c *Config) { c.On["created"] = Action{} }, "folder_watchers[inbox].on.created.template: missing"},
		{"bad template", func(c *Config) { c.On["created"] = Action{Template: "In gest"} }, `on.created.template: "In gest" is not a template name`},
		{"bad priority", func(c *Config) { c.On["created"] = Action{Template: "x", Priority: -1} }, "on.created.priority: must be between 0 and 1000"},
		{"no events", func(c *Config) { c.On = nil }, "folder_watchers[inbox].on: no event"},
		{"negative poll", func(c *Config) { c.Poll = -time.Second }, "folder_watchers[inbox].poll: negative duration -1s"},
		{"negative stable_for", func(c *Config) { c.StableFor = -time.Second }, "folder_watchers[inbox].stable_for: negative duration"},
		{"negative min_age", func(c *Config) { c.StableFor, c.MinAge = 0, -time.Second }, "folder_watchers[inbox].min_age: negative duration"},
		{"two rules", func(c *Config) { c.MinAge = time.Minute }, "folder_watchers[inbox].min_age: set together with stable_for: pick one rule"},
		{"bad marker", func(c *Config) { c.DoneMarker = "x/.done" }, `folder_watchers[inbox].done_marker: "x/.done"`},
		{"negative full pass", func(c *Config) { c.FullPassEvery = -1 }, "folder_watchers[inbox].full_pass_every: negative count -1"},
		{"bad first start", func(c *Config) { c.FirstStart = "replay" }, `folder_watchers[inbox].first_start: "replay": want fire or baseline`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			c.On = map[string]Action{}
			for k, v := range testConfig(dir).On {
				c.On[k] = v
			}
			tc.mut(&c)
			err := errors.Join(c.Validate(), c.CheckPath())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("err %T is not a *ConfigError matching ErrInvalid", err)
			}
		})
	}
	// Several problems are all reported, in field order.
	c := ok()
	c.Poll, c.FirstStart = -1, "x"
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "first_start") || !strings.Contains(err.Error(), "poll") ||
		strings.Index(err.Error(), "first_start") > strings.Index(err.Error(), "poll") {
		t.Fatalf("err = %v", err)
	}
	good := ok()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestMatcher(t *testing.T) {
	m := newMatcher([]string{"*.wav", "news/*.mxf"}, []string{"*.part", "tmp", "a/b"})
	for rel, want := range map[string]bool{
		"x.wav": true, "deep/x.wav": true, "x.mp3": false, "x.wav.part": false,
		"news/x.mxf": true, "news/y/x.mxf": false, "x.mxf": false,
	} {
		if got := m.file(rel, filepath.Base(rel)); got != want {
			t.Errorf("file(%q) = %v, want %v", rel, got, want)
		}
	}
	for rel, want := range map[string]bool{"tmp": true, "x/tmp": true, "a/b": true, "c/a/b": false, "news": false} {
		if got := m.skipDir(rel, filepath.Base(rel)); got != want {
			t.Errorf("skipDir(%q) = %v, want %v", rel, got, want)
		}
	}
	all := newMatcher(nil, nil)
	if !all.file("any/thing", "thing") {
		t.Error("no include does not match everything")
	}
}

func FuzzFingerprint(f *testing.F) {
	f.Add(int64(0), int64(0))
	f.Add(int64(1<<40), int64(-1))
	f.Fuzz(func(t *testing.T, size, mtime int64) {
		fp := fingerprint{size, mtime}
		got, ok := parseFingerprint(fp.String())
		if !ok || got != fp {
			t.Fatalf("%v → %q → %v", fp, fp.String(), got)
		}
	})
}

// TestNewRefusesMissingFolder: a configuration that names a folder this
// host does not have is valid (another host may run the watcher), but a
// watcher is not started on it.
func TestNewRefusesMissingFolder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{filepath.Join(dir, "missing"), "folder_watchers[inbox].path: " + filepath.Join(dir, "missing") + ": no such directory"},
		{file, "folder_watchers[inbox].path: " + file + ": not a directory"},
	} {
		c := testConfig(tc.path)
		if err := c.Validate(); err != nil {
			t.Fatalf("Validate(%s): %v, want the config valid", tc.path, err)
		}
		_, err := New(Options{Client: newClient(t, "http://127.0.0.1:1"), Watchers: []Config{c}, Log: testLog(t)})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, model.ErrInvalid) {
			t.Errorf("New with path %s: %v, want an invalid-input error %q", tc.path, err, tc.want)
		}
	}
}
