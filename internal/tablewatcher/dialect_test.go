package tablewatcher

import (
	"testing"
)

func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		dsn                 string
		dialect             dialect
		driverDSN, redacted string
	}{
		{"postgres://u:pw@db1:5432/content?sslmode=disable", postgres,
			"postgres://u:pw@db1:5432/content?sslmode=disable", "postgres://u:xxxxx@db1:5432/content?sslmode=disable"},
		{"mysql://u:pw@db2/content", mariadb,
			"u:pw@tcp(db2:3306)/content?parseTime=true&timeout=10s", "mysql://u:xxxxx@db2/content"},
		{"mysql://u@db2:3307/content?parseTime=false&loc=Local", mariadb,
			"u@tcp(db2:3307)/content?loc=Local&parseTime=true&timeout=10s", "mysql://u@db2:3307/content?parseTime=false&loc=Local"},
		{"sqlite:/data/my content.db", sqlite,
			"file:/data/my%20content.db?mode=ro&_pragma=busy_timeout(5000)&_pragma=query_only(1)", "sqlite:/data/my content.db"},
		// Finding 9 of issue 13 for content databases: a password holding
		// '@' reaches the driver escaped, and messages never show it.
		{"postgres://u:hun@ter2PW@db1/content", postgres,
			"postgres://u:hun%40ter2PW@db1/content", "postgres://u:xxxxx@db1/content"},
		{"postgres://db1/content?password=s3cret&user=u", postgres,
			"postgres://db1/content?password=s3cret&user=u", "postgres://db1/content?password=xxxxx&user=u"},
		{"mysql://u:hun@ter2PW@db2/content", mariadb,
			"u:hun@ter2PW@tcp(db2:3306)/content?parseTime=true&timeout=10s", "mysql://u:xxxxx@db2/content"},
		{"sqlite:rel/content.db", sqlite,
			"file:rel/content.db?mode=ro&_pragma=busy_timeout(5000)&_pragma=query_only(1)", "sqlite:rel/content.db"},
	} {
		src, err := parseSource(tc.dsn)
		if err != nil {
			t.Errorf("parseSource(%q): %v", tc.dsn, err)
			continue
		}
		if src.dialect != tc.dialect || src.dsn != tc.driverDSN || src.redacted != tc.redacted {
			t.Errorf("parseSource(%q) = %v %q %q; want %v %q %q", tc.dsn, src.dialect, src.dsn, src.redacted, tc.dialect, tc.driverDSN, tc.redacted)
		}
	}
	// A path with ? or # cannot be told from a URI's query or fragment.
	for _, dsn := range []string{"sqlite:/data/a#1.db", "sqlite:/data/a.db?mode=rwc"} {
		if _, err := parseSource(dsn); err == nil {
			t.Errorf("parseSource(%q) accepted", dsn)
		}
	}
}

func TestQuote(t *testing.T) {
	if got := postgres.quote("order"); got != `"order"` {
		t.Errorf("postgres: %s", got)
	}
	if got := mariadb.quoteTable("radio", "order"); got != "`radio`.`order`" {
		t.Errorf("mysql: %s", got)
	}
	// Defence in depth: quote is safe even on what Validate refuses.
	if got := sqlite.quote(`a"b`); got != `"a""b"` {
		t.Errorf("sqlite: %s", got)
	}
}

func TestBuildPlan(t *testing.T) {
	p := buildPlan(postgres, "public", "music", []string{"grp", "id", "title", "modified"}, []string{"grp", "id"}, "modified", 1000)
	const head = `SELECT "grp", "id", "title", "modified" FROM "public"."music" WHERE "grp" IS NOT NULL AND "id" IS NOT NULL`
	for _, tc := range []struct{ name, got, want string }{
		{"fullFirst", p.fullFirst, head + ` ORDER BY "grp", "id" LIMIT 1000`},
		{"fullNext", p.fullNext, head + ` AND ("grp" >= $1 AND ("grp" > $2 OR "id" > $3)) ORDER BY "grp", "id" LIMIT 1000`},
		{"incrAll", p.incrAll, head + ` AND "modified" IS NOT NULL ORDER BY "modified", "grp", "id" LIMIT 1000`},
		{"incrFirst", p.incrFirst, head + ` AND "modified" >= $1 ORDER BY "modified", "grp", "id" LIMIT 1000`},
		{"incrNext", p.incrNext, head + ` AND ("modified" >= $1 AND ("modified" > $2 OR ("grp" >= $3 AND ("grp" > $4 OR "id" > $5)))) ORDER BY "modified", "grp", "id" LIMIT 1000`},
		{"maxVersion", p.maxVersion, `SELECT MAX("modified") FROM "public"."music"`},
	} {
		if tc.got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, tc.got, tc.want)
		}
	}
	if got := pick([]any{"v", "g", 7}, p.incrNextArgs); len(got) != 5 || got[0] != "v" || got[1] != "v" || got[2] != "g" || got[3] != "g" || got[4] != 7 {
		t.Errorf("incrNext args %v", got)
	}

	// SQLite reads key and version again as stored (+col), after the data.
	s := buildPlan(sqlite, "", "music", []string{"id", "modified"}, []string{"id"}, "modified", 7)
	if want := `SELECT "id", "modified", +"id", +"modified" FROM "music" WHERE "id" IS NOT NULL AND "modified" >= ? ORDER BY "modified", "id" LIMIT 7`; s.incrFirst != want {
		t.Errorf("sqlite incrFirst:\n got %s\nwant %s", s.incrFirst, want)
	}
	if s.keyRaw[0] != 2 || s.verRaw != 3 || s.keyCol[0] != 0 || s.verCol != 1 {
		t.Errorf("sqlite raw columns: %+v", s)
	}
	// MySQL: backticks, ? placeholders, no version: no incremental SQL.
	m := buildPlan(mariadb, "", "music", []string{"id"}, []string{"id"}, "", 1000)
	if want := "SELECT `id` FROM `music` WHERE `id` IS NOT NULL AND (`id` > ?) ORDER BY `id` LIMIT 1000"; m.fullNext != want || m.incrFirst != "" {
		t.Errorf("mysql fullNext:\n got %s\nwant %s", m.fullNext, want)
	}
}
