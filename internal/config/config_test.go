package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dpe-engine/dpe/internal/model"
)

func TestParseRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, doc string
		line      int
		want      string
	}{
		{"unknown top-level field", "schedule:\n  - name: x\n", 1, "schedule"},
		{"unknown schedule field", "schedules:\n  - name: a\n    cron: '* * * * *'\n    template: t\n    croon: x\n", 5, "croon"},
		{"bad cron", "schedules:\n  - name: a\n    cron: '61 * * * *'\n    template: t\n", 2, "cron"},
		{"unknown time zone", "schedules:\n  - name: a\n    cron: '* * * * *'\n    timezone: Mars/Base\n    template: t\n", 2, "Mars/Base"},
		{"unsafe identifier", "table_watchers:\n  - name: m\n    dsn: sqlite:/tmp/x.db\n    table: 'music; drop table x'\n    key: [id]\n    on: {created: {template: t}}\n", 2, "unsafe"},
		{"duplicate trigger name", "schedules:\n  - {name: a, cron: '* * * * *', template: t}\n  - {name: a, cron: '* * * * *', template: t}\n", 3, "already used"},
		{"wrong type", "processor:\n  quota: {util.copy: many}\n", 2, "many"},
		{"zero quota", "processor:\n  quota: {util.copy: 0}\n", 0, "processor.quota.util.copy"},
		{"relative location root", "locations:\n  archive: [relative/dir]\n", 0, "absolute"},
		{"not YAML", "schedules: [\n", 1, "did not find"},
		{"bad alert kind", "processor: {}\nalerts:\n  receivers: [{name: ops, webhook: 'http://h/x'}]\n  rules: [{name: r, kind: failed}]\n", 2, "alerts.rules[0].kind"},
		{"alert receiver unknown", "alerts:\n  receivers: [{name: ops, webhook: 'http://h/x'}]\n  rules: [{name: r, kind: workflow_failed, receivers: [pager]}]\n", 1, "alerts.rules[0].receivers[0]"},
		{"unknown alert field", "alerts:\n  rules: [{name: r, kind: workflow_failed, fore: 1m}]\n", 2, "fore"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("dpe.yaml", []byte(strings.ReplaceAll(tc.doc, "/tmp/x.db", dir+"/x.db")))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *config.Error", err)
			}
			if !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("%v does not match ErrInvalid", err)
			}
			if tc.line != 0 && ce.Line != tc.line {
				t.Fatalf("line %d, want %d: %v", ce.Line, tc.line, err)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "dpe.yaml") {
				t.Fatalf("%q lacks %q or the file name", err, tc.want)
			}
		})
	}
}

// TestParseSharedFile: one file serves every role of a plant, so a folder
// watcher's folder need not exist where the file is read: a server that
// reads the file for its alerts, or a scheduler, runs on a host that does
// not see the watched folder (the folder watcher itself refuses a missing
// folder when it starts: folderwatcher.New).
func TestParseSharedFile(t *testing.T) {
	src := "folder_watchers:\n  - name: in\n    path: /no/such/dir\n    on: {created: {template: t}}\n" +
		"schedules:\n  - {name: nightly, cron: '0 2 * * *', template: t}\n"
	f, err := Parse("dpe.yaml", []byte(src))
	if err != nil {
		t.Fatalf("a file whose watched folder is elsewhere: %v", err)
	}
	if len(f.FolderWatchers) != 1 || len(f.Schedules) != 1 {
		t.Fatalf("parsed %d watchers, %d schedules; want 1 and 1", len(f.FolderWatchers), len(f.Schedules))
	}
}

func TestParseDesignExample(t *testing.T) {
	dir := t.TempDir()
	doc := `
schedules:
  - name: nightly-purge
    cron: "0 2 * * *"
    timezone: Europe/Berlin
    template: purge
    args: {older_than: 720h}
    misfire: once
    overlap: allow
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
      deleted: {template: forget, args: {path: "${{ event.path }}"}}
table_watchers:
  - name: music
    dsn: postgres://content@db1/content
    table: music
    key: [id]
    version_column: modified
    poll: 2s
    full_pass_every: 30
    filter: "row.category == 'news'"
    on:
      created: {template: new-entry, args: {id: "${{ row.id }}"}}
locations:
  archive: [/mnt/archive-a, /mnt/archive-b]
processor:
  quota: {util.copy: 4, audio.loudness: 2}
`
	f, err := Parse("dpe.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Schedules) != 1 || len(f.FolderWatchers) != 1 || len(f.TableWatchers) != 1 || f.Processor.Quota["util.copy"] != 4 {
		t.Fatalf("parsed %+v", f)
	}
}

// TestREADMEAlertsExample: the alerts example of README.md is a valid
// configuration (with its secret file present).
func TestREADMEAlertsExample(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```yaml\nalerts:\n")
	if !ok {
		t.Fatal("README.md has no ```yaml block starting with alerts:")
	}
	doc, _, _ := strings.Cut(rest, "```")
	secret := filepath.Join(t.TempDir(), "webhook.secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc = "alerts:\n" + strings.ReplaceAll(doc, "/etc/dpe/webhook.secret", secret)
	f, err := Parse("README.md", []byte(doc))
	if err != nil {
		t.Fatalf("README's alerts example: %v", err)
	}
	if len(f.Alerts.Rules) != 3 || len(f.Alerts.Receivers) != 2 || f.Alerts.Rules[2].Receivers[0] != "ops" {
		t.Fatalf("parsed %+v", f.Alerts)
	}
}
