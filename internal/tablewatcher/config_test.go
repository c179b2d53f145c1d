package tablewatcher

import (
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/dpe-engine/dpe/internal/model"
)

// validConfig is a config that passes Validate; tests break one field.
func validConfig() Config {
	return Config{
		Name:          "music",
		DSN:           "postgres://content@db1/content",
		Table:         "music",
		Key:           []string{"id"},
		VersionColumn: "modified",
		On:            map[string]Action{EventCreated: {Template: "new-entry", Args: map[string]any{"id": "${{ row.id }}"}}},
	}
}

func TestValidateDefaults(t *testing.T) {
	c := validConfig()
	c.Filter = "row.category == 'news' && row['size'] > 10"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Poll != DefaultPoll || c.FullPassEvery != DefaultFullPassEvery || c.FirstStart != FirstStartBaseline {
		t.Errorf("defaults: poll %v, full_pass_every %d, first_start %q", c.Poll, c.FullPassEvery, c.FirstStart)
	}
	if c.filter == nil || strings.Join(c.filterCols, ",") != "category,size" {
		t.Errorf("filter not compiled or columns %v, want category,size", c.filterCols)
	}
	if c.source.dialect != postgres || c.source.driver != "pgx" {
		t.Errorf("source %+v", c.source)
	}
}

func TestValidateRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(c *Config)
		want   string // field and reason, after "table_watchers[music]."
	}{
		{"missing name", func(c *Config) { c.Name = "" }, "table_watchers[?].name: required"},
		{"bad name", func(c *Config) { c.Name = "my music" }, `table_watchers[my music].name: "my music": want 1 to 128`},
		{"missing dsn", func(c *Config) { c.DSN = "" }, "dsn: required"},
		{"unsupported dsn", func(c *Config) { c.DSN = "oracle://scott:tiger@db/orcl" }, `dsn: unsupported DSN "oracle://scott:xxxxx@db/orcl"`},
		{"mysql dsn without database", func(c *Config) { c.DSN = "mysql://root@db:3306" }, "dsn: mysql://root@db:3306: want one database name"},
		{"mysql dsn with bad setting", func(c *Config) { c.DSN = "mysql://root@db/content?parseTime=maybe" }, "dsn: mysql://root@db/content?parseTime=maybe: invalid bool value"},
		{"sqlite without path", func(c *Config) { c.DSN = "sqlite:" }, "dsn: sqlite: needs a file path"},
		{"sqlite with parameters", func(c *Config) { c.DSN = "sqlite:/data/c.db?mode=rwc" }, "takes no parameters"},
		{"missing table", func(c *Config) { c.Table = "" }, "table: required"},
		{"injection in table", func(c *Config) { c.Table = "music; drop table x" }, `table: unsafe identifier "music; drop table x"`},
		{"quote in table", func(c *Config) { c.Table = `a"b` }, `table: unsafe identifier "a\"b"`},
		{"backtick in table", func(c *Config) { c.Table = "a`b" }, "table: unsafe identifier \"a`b\""},
		{"three-part table", func(c *Config) { c.Table = "db.public.music" }, `table: "db.public.music": want table or schema.table`},
		{"empty schema", func(c *Config) { c.Table = ".music" }, `table: unsafe identifier ".music"`},
		{"table starting with a digit", func(c *Config) { c.Table = "1music" }, `table: unsafe identifier "1music"`},
		{"table too long", func(c *Config) { c.Table = strings.Repeat("t", 64) }, "table: unsafe identifier"},
		{"missing key", func(c *Config) { c.Key = nil }, "key: required"},
		{"unsafe key", func(c *Config) { c.Key = []string{"id", "id) OR (1=1"} }, `key[1]: unsafe identifier "id) OR (1=1"`},
		{"repeated key", func(c *Config) { c.Key = []string{"id", "ID"} }, `key[1]: "ID" is listed twice`},
		{"unsafe version column", func(c *Config) { c.VersionColumn = "modified at" }, `version_column: unsafe identifier "modified at"`},
		{"unsafe column", func(c *Config) { c.Columns = []string{"title", "*"} }, `columns[1]: unsafe identifier "*"`},
		{"poll too short", func(c *Config) { c.Poll = 10 * time.Millisecond }, "poll: 10ms is below the minimum 100ms"},
		{"negative full_pass_every", func(c *Config) { c.FullPassEvery = -1 }, "full_pass_every: -1"},
		{"filter syntax", func(c *Config) { c.Filter = "row.category ==" }, "filter: unexpected token EOF"},
		{"filter not a bool", func(c *Config) { c.Filter = "len(row.title)" }, "filter: expected bool"},
		{"filter unknown name", func(c *Config) { c.Filter = "category == 'news'" }, "filter: unknown name category"},
		{"no events", func(c *Config) { c.On = nil }, "on: required"},
		{"unknown event", func(c *Config) { c.On = map[string]Action{"renamed": {Template: "x"}} }, `on: unknown event "renamed"`},
		{"missing template", func(c *Config) { c.On = map[string]Action{EventDeleted: {}} }, "on.deleted.template: required"},
		{"bad template name", func(c *Config) { c.On = map[string]Action{EventUpdated: {Template: "New Entry"}} }, `on.updated.template: "New Entry" is not a template name`},
		{"bad args expression", func(c *Config) {
			c.On = map[string]Action{EventCreated: {Template: "x", Args: map[string]any{"id": "${{ row. }}"}}}
		}, "on.created.args.id:"},
		{"args outside the trigger scope", func(c *Config) {
			c.On = map[string]Action{EventCreated: {Template: "x", Args: map[string]any{"id": "${{ vars.x }}"}}}
		}, "on.created.args.id:"},
		{"bad first_start", func(c *Config) { c.FirstStart = "later" }, `first_start: "later": want baseline or fire`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.modify(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("accepted; want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q\ndoes not contain %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "table_watchers[") {
				t.Errorf("error %q does not name the watcher", err)
			}
			if !errors.Is(err, model.ErrInvalid) {
				t.Errorf("error %v does not match model.ErrInvalid", err)
			}
		})
	}
}

func TestValidateAll(t *testing.T) {
	a, b, c := validConfig(), validConfig(), validConfig()
	c.Name = ""
	err := ValidateAll([]Config{a, b, c})
	for _, want := range []string{
		"table_watchers[music].name: duplicate: table_watchers[0] has the same name",
		"table_watchers[2].name: required",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ValidateAll: %v; want %q", err, want)
		}
	}
}

// TestConfigYAML reads the table watcher of DESIGN §9.
func TestConfigYAML(t *testing.T) {
	const doc = `
table_watchers:
  - name: music
    dsn: postgres://content@db1/content     # or mysql://..., sqlite:...
    table: music
    key: [id]
    version_column: modified                 # optional
    poll: 2s
    full_pass_every: 30                       # polls; finds deletions
    filter: "row.category == 'news'"         # optional expression
    on:
      created: {template: new-entry, args: {id: "${{ row.id }}"}}
  - name: jingles
    dsn: mysql://dpe:secret@db2:3306/content?timeout=5s
    table: radio.jingles
    key: [station, id]
    columns: [title, duration]
    poll: 500ms
    first_start: fire
    dry_run: true
    on:
      deleted: {template: forget, args: {id: "${{ row.id }}"}, priority: 5}
`
	var file struct {
		TableWatchers []Config `yaml:"table_watchers"`
	}
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		t.Fatal(err)
	}
	if err := ValidateAll(file.TableWatchers); err != nil {
		t.Fatal(err)
	}
	m, j := file.TableWatchers[0], file.TableWatchers[1]
	if m.Poll != 2*time.Second || m.FullPassEvery != 30 || m.VersionColumn != "modified" || m.Filter == "" ||
		m.On[EventCreated].Args["id"] != "${{ row.id }}" {
		t.Errorf("music: %+v", m)
	}
	if j.Poll != 500*time.Millisecond || j.FirstStart != FirstStartFire || !j.DryRun || j.On[EventDeleted].Priority != 5 ||
		j.Table != "radio.jingles" || len(j.Key) != 2 || len(j.Columns) != 2 {
		t.Errorf("jingles: %+v", j)
	}
	if j.source.dialect != mariadb || !strings.Contains(j.source.dsn, "parseTime=true") ||
		!strings.Contains(j.source.dsn, "tcp(db2:3306)/content") || strings.Contains(j.source.redacted, "secret") {
		t.Errorf("jingles source: dsn %q, redacted %q", j.source.dsn, j.source.redacted)
	}
}

// FuzzValidateTable checks that whatever Validate accepts as a table is
// made only of safe identifiers, so quoting it cannot break out.
func FuzzValidateTable(f *testing.F) {
	for _, s := range []string{"music", "public.music", "music; drop table x", `a"b`, "a`b", "a.b.c", "ä", "_x9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, table string) {
		c := validConfig()
		c.Table = table
		if c.Validate() != nil {
			return
		}
		parts := strings.Split(table, ".")
		if len(parts) > 2 {
			t.Fatalf("accepted %q", table)
		}
		for _, p := range parts {
			if !identRe.MatchString(p) || strings.ContainsAny(p, "\"`'; ") {
				t.Fatalf("accepted %q", table)
			}
		}
	})
}
