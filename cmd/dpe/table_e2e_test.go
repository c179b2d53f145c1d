package main

import (
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/dpe-engine/dpe/internal/eventually"
	"github.com/dpe-engine/dpe/internal/model"
	"github.com/dpe-engine/dpe/internal/testdb"
)

// TestTableWatchersExactlyOnce: against real PostgreSQL and real MariaDB
// content databases, 5,000 inserts, 1,000 updates and 500 deletes with a
// concurrent watcher pair killed and restarted in between start exactly
// one instance per change.
func TestTableWatchersExactlyOnce(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		dsn := testdb.Postgres(t)
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		tableWatchers(t, db, dsn, "$")
	})
	t.Run("mariadb", func(t *testing.T) {
		dsn := testdb.MySQL(t)
		db, err := sql.Open("mysql", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		cfg, err := mysql.ParseDSN(dsn)
		if err != nil {
			t.Fatal(err)
		}
		u := fmt.Sprintf("mysql://%s@%s/%s", cfg.User, cfg.Addr, cfg.DBName)
		if cfg.Passwd != "" {
			u = fmt.Sprintf("mysql://%s:%s@%s/%s", cfg.User, cfg.Passwd, cfg.Addr, cfg.DBName)
		}
		tableWatchers(t, db, u, "?")
	})
}

func tableWatchers(t *testing.T, db *sql.DB, dsn, mark string) {
	srvURL, c, dir := triggerStack(t)
	if _, err := db.Exec(`CREATE TABLE music (id INT PRIMARY KEY, title VARCHAR(200) NOT NULL, modified BIGINT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, `
table_watchers:
  - name: music
    dsn: "`+dsn+`"
    table: music
    key: [id]
    version_column: modified
    poll: 300ms
    full_pass_every: 5
    on:
      created: {template: note, args: {path: "${{ string(row.id) }}", event: created}}
      updated: {template: note, args: {path: "${{ string(row.id) }}", event: updated}}
      deleted: {template: note, args: {path: "${{ string(row.id) }}", event: deleted}}
`)
	version := int64(0)
	arg := func(i int) string {
		if mark == "$" {
			return fmt.Sprintf("$%d", i)
		}
		return "?"
	}
	insert := func(from, to int) {
		t.Helper()
		for lo := from; lo < to; lo += 250 {
			var vals []string
			var args []any
			for id := lo; id < min(lo+250, to); id++ {
				version++
				n := len(args)
				vals = append(vals, fmt.Sprintf("(%s, %s, %s)", arg(n+1), arg(n+2), arg(n+3)))
				args = append(args, id, fmt.Sprintf("title %d", id), version)
			}
			if _, err := db.Exec("INSERT INTO music (id, title, modified) VALUES "+strings.Join(vals, ", "), args...); err != nil {
				t.Fatal(err)
			}
		}
	}
	watchers := map[string]*proc{}
	start := func(id string) {
		watchers[id] = startDPE(t, "table-"+id, dir, "tablewatcher", "--server", srvURL, "--config", cfg, "--mode", "concurrent", "--id", id)
	}
	start("a")
	start("b")
	// The first full pass (baseline of the empty table) must be done
	// before rows arrive, or they would be remembered, not started.
	eventually.Value(t, 30*time.Second, func() (string, error) {
		tr, err := c.GetTrigger(t.Context(), "music")
		if err != nil {
			return "", err
		}
		return string(tr.State), nil
	}, func(state string) bool { return strings.Contains(state, "baselined") }, "the table watcher's first pass (its state)")

	insert(0, 2500)
	for _, p := range watchers {
		p.kill()
	}
	insert(2500, 5000)
	start("a")
	start("b")
	waitCount(t, c, 2*time.Minute, "5000 created", func(m map[string]model.Instance) bool {
		return countEvents(m, "table/music")["created"] >= 5000
	})

	for id := 0; id < 1000; id++ {
		version++
		if _, err := db.Exec(fmt.Sprintf("UPDATE music SET title = %s, modified = %s WHERE id = %s", arg(1), arg(2), arg(3)), fmt.Sprintf("retitled %d", id), version, id); err != nil {
			t.Fatal(err)
		}
		if id == 500 {
			watchers["a"].kill()
			start("a")
		}
	}
	waitCount(t, c, time.Minute, "1000 updated", func(m map[string]model.Instance) bool {
		return countEvents(m, "table/music")["updated"] >= 1000
	})
	if _, err := db.Exec(fmt.Sprintf("DELETE FROM music WHERE id >= %s", arg(1)), 4500); err != nil {
		t.Fatal(err)
	}
	waitCount(t, c, time.Minute, "500 deleted", func(m map[string]model.Instance) bool {
		return countEvents(m, "table/music")["deleted"] >= 500
	})
	// Several more polls and full passes (one each 1.5 s), proven by
	// marker rows each seen in turn rather than by a sleep: then nothing
	// has started but the markers.
	markers := 0
	for begin := time.Now(); markers == 0 || time.Since(begin) < 3*time.Second; {
		insert(9000+markers, 9001+markers)
		markers++
		waitCount(t, c, time.Minute, fmt.Sprintf("marker row %d", markers), func(m map[string]model.Instance) bool {
			return countEvents(m, "table/music")["created"] >= 5000+markers
		})
	}
	if n := countEvents(instancesOf(t, c), "table/music"); n["created"] != 5000+markers || n["updated"] != 1000 || n["deleted"] != 500 {
		t.Fatalf("events %v, want created 5000 (+%d markers), updated 1000, deleted 500", n, markers)
	}
}
