package main

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// pageTemplates are the templates of the pages phase's instances: each
// runs three jobs (fetch, work, publish); work's type differs per
// template. The loader and the templates imported through the API agree
// on them.
var pageTemplates = []struct{ name, work string }{
	{"ingest", "plant.probe"},
	{"transcode", "plant.transcode"},
	{"loudness", "plant.loudness"},
	{"waveform", "plant.waveform"},
	{"archive", "plant.checksum"},
}

// pageJobTypes are the types of the standalone jobs. They and the
// templates' types (all but noop) are registered through the API before
// the load, as processors serving them would have.
var pageJobTypes = []string{"noop", "plant.fetch", "plant.transcode", "plant.notify", "plant.checksum", "plant.probe"}

// pageTemplateYAML is the source of one of pageTemplates.
func pageTemplateYAML(name, work string) string {
	return fmt.Sprintf(`name: %s
description: dpe bench pages phase - fetch, %s, publish
steps:
  - id: fetch
    job: plant.fetch
  - id: work
    job: %s
  - id: publish
    job: plant.publish
`, name, work, work)
}

// pageSpan is how far back the loaded instances and jobs were created:
// evenly over the last month, the newest a moment before the load.
const pageSpan = 30 * 24 * time.Hour

// pageLoad is what the loader put in the core database: the id ranges of
// the loaded rows (the phase picks detail pages and cursors in them).
type pageLoad struct {
	Instances    int     `json:"instances"`
	Jobs         int     `json:"jobs"`
	AttachedJobs int     `json:"jobs_of_instances"`
	Steps        int     `json:"steps"`
	Seconds      float64 `json:"load_seconds"`
	// MinInstance..MaxInstance and MinJob..MaxJob are the ids loaded.
	MinInstance, MaxInstance int64
	MinJob, MaxJob           int64
	// Now is the time the load treated as now (the newest rows' creation).
	Now time.Time `json:"-"`
}

// sqlDialect is what differs between the engines in the loader's SQL.
type sqlDialect struct {
	engine string
	t0     int64 // Unix ms of the oldest loaded row
}

// ts turns an expression of milliseconds after t0 into a timestamp column
// value: timestamptz on PostgreSQL, Unix ms on SQLite.
func (d sqlDialect) ts(ms string) string {
	if d.engine == "postgres" {
		return fmt.Sprintf("to_timestamp((%d + (%s)) / 1000.0)", d.t0, ms)
	}
	return fmt.Sprintf("(%d + (%s))", d.t0, ms)
}

// json casts a text expression to the engine's JSON column type.
func (d sqlDialect) json(expr string) string {
	if d.engine == "postgres" {
		return "(" + expr + ")::json"
	}
	return expr
}

// series is a FROM item of the integers 1..n named col.
func (d sqlDialect) series(col string, n int) string {
	if d.engine == "postgres" {
		// bigint: the hashes (n * 7919) overflow an integer.
		return fmt.Sprintf("generate_series(1::bigint, %d) AS g(%s)", n, col)
	}
	return fmt.Sprintf("(WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d) SELECT x AS %s FROM c) AS g", n, col)
}

// pad7 writes an integer expression with leading zeros to 7 digits.
func (d sqlDialect) pad7(expr string) string {
	if d.engine == "postgres" {
		return "lpad(" + expr + "::text, 7, '0')"
	}
	return "printf('%07d', " + expr + ")"
}

// caseOf is CASE expr WHEN 0 THEN 'v0' WHEN 1 THEN 'v1' ... END.
func caseOf(expr string, values []string) string {
	var b strings.Builder
	b.WriteString("CASE " + expr)
	for i, v := range values {
		fmt.Fprintf(&b, " WHEN %d THEN '%s'", i, v)
	}
	b.WriteString(" END")
	return b.String()
}

// loadPages bulk-loads the pages phase's plant straight into the migrated
// core database, in one transaction, with the server stopped: instances
// workflow instances of pageTemplates (mixed states, the newest 2%
// pending or running, created evenly over the last month, each but the
// pending with its jobs and steps) and as many more jobs of mixed types
// and states as make jobs in all (the newest 1% queued or running). Each
// table is one INSERT ... SELECT over a generated series (generate_series
// on PostgreSQL, a recursive CTE on SQLite), so the rows never cross the
// wire. Running jobs hold a lease a week long, so that nothing changes
// while the pages are read. PostgreSQL is then VACUUM ANALYZEd, as
// autovacuum would after such a load; SQLite is not analyzed, since dpe
// never runs ANALYZE either.
func (db *coreDB) loadPages(ctx context.Context, instances, jobs int) (pageLoad, error) {
	start := time.Now()
	now := start.Truncate(time.Millisecond)
	d := sqlDialect{engine: db.engine, t0: now.Add(-pageSpan).UnixMilli()}
	ld := pageLoad{Now: now}
	tx, err := db.sql.BeginTx(ctx, nil)
	if err != nil {
		return ld, err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit: a no-op
	var instBase, jobBase int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM instances`).Scan(&instBase); err != nil {
		return ld, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM jobs`).Scan(&jobBase); err != nil {
		return ld, err
	}
	tpls := make([]string, len(pageTemplates))
	works := make([]string, len(pageTemplates))
	for i, t := range pageTemplates {
		tpls[i], works[i] = t.name, t.work
	}

	// Instances: n = 1..instances, oldest first.
	if instances > 0 {
		stepMs := pageSpan.Milliseconds() / int64(instances)
		cut := instances - instances/50 // the newest 2% are live
		current := "CASE WHEN st = 'running' THEN '[\"work\"]' ELSE '[]' END"
		if d.engine == "postgres" {
			current = "CASE WHEN st = 'running' THEN '[\"work\"]'::jsonb END"
		}
		c := fmt.Sprintf("(n - 1) * %d", stepMs)
		end := c + " + 60000 + (n * 7919) % 600 * 1000"
		q := fmt.Sprintf(`
INSERT INTO instances (name, template, version, args, priority, state, progress, current, output, error,
                       created_at, started_at, finished_at, updated_at)
SELECT tpl || '-' || %s, tpl, 1,
       %s,
       CASE WHEN n %% 10 = 0 THEN 10 ELSE 0 END, st,
       CASE st WHEN 'succeeded' THEN 100 WHEN 'failed' THEN 66 WHEN 'canceled' THEN 33 WHEN 'running' THEN 50 ELSE 0 END,
       %s,
       CASE WHEN st = 'succeeded' THEN %s END,
       CASE st WHEN 'failed' THEN 'step work: job failed: exit status 1: ffmpeg: Invalid data found when processing input' ELSE '' END,
       %s,
       CASE WHEN st = 'pending' THEN NULL ELSE %s END,
       CASE WHEN st IN ('succeeded', 'failed', 'canceled') THEN %s END,
       %s
FROM (SELECT n, %s AS tpl,
             CASE WHEN n > %d THEN (CASE WHEN n %% 2 = 0 THEN 'running' ELSE 'pending' END)
                  WHEN (n * 7919) %% 100 < 88 THEN 'succeeded'
                  WHEN (n * 7919) %% 100 < 97 THEN 'failed'
                  ELSE 'canceled' END AS st
      FROM %s) AS s
ORDER BY n`,
			d.pad7("n"),
			d.json(`'{"src": "/media/in/clip-' || n || '.mxf", "profile": "hd"}'`),
			current, d.json(`'{"published": true}'`),
			d.ts(c), d.ts(c+" + 1000"), d.ts(end), d.ts(end),
			caseOf("n % "+fmt.Sprint(len(tpls)), tpls), cut, d.series("n", instances))
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return ld, fmt.Errorf("load instances: %w", err)
		}
		// The jobs of the instances: three each (two while running, none
		// while pending), their states following the instance's.
		var attached sql.NullInt64
		if err := tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT SUM(CASE state WHEN 'pending' THEN 0 WHEN 'running' THEN 2 ELSE 3 END)
FROM instances WHERE id > %d`, instBase)).Scan(&attached); err != nil {
			return ld, err
		}
		ld.AttachedJobs = int(attached.Int64)
	}
	standalone := max(0, jobs-ld.AttachedJobs)

	// Jobs: the instances' and the standalone ones in one statement,
	// ordered by creation, so that ids grow with created_at as they do in
	// a real plant.
	noInstance := "0"
	if d.engine == "postgres" {
		noInstance = "NULL::bigint"
	}
	var parts []string
	if ld.AttachedJobs > 0 {
		stepMs := pageSpan.Milliseconds() / int64(instances)
		parts = append(parts, fmt.Sprintf(`
SELECT (i.id - %d - 1) * %d + 1000 + (k.s - 1) * 20000 AS c,
       CASE k.s WHEN 1 THEN 'plant.fetch' WHEN 2 THEN %s ELSE 'plant.publish' END AS type,
       i.id AS instance_id,
       CASE k.s WHEN 1 THEN 'fetch' WHEN 2 THEN 'work' ELSE 'publish' END AS step,
       CASE i.state WHEN 'succeeded' THEN 'succeeded'
                    WHEN 'failed' THEN (CASE WHEN k.s = 3 THEN 'failed' ELSE 'succeeded' END)
                    WHEN 'canceled' THEN (CASE WHEN k.s = 1 THEN 'succeeded' ELSE 'canceled' END)
                    ELSE (CASE WHEN k.s = 1 THEN 'succeeded' ELSE 'running' END) END AS st,
       (i.id * 3 + k.s) * 7919 %% 1000 AS h
FROM instances i CROSS JOIN (SELECT 1 AS s UNION ALL SELECT 2 UNION ALL SELECT 3) k
WHERE i.id > %d AND i.state <> 'pending' AND NOT (i.state = 'running' AND k.s = 3)`,
			instBase, stepMs, caseOf(fmt.Sprintf("(i.id - %d - 1) %% %d", instBase, len(works)), works), instBase))
	}
	if standalone > 0 {
		stepMs := pageSpan.Milliseconds() / int64(standalone)
		cut := standalone - standalone/100 // the newest 1% are live
		types := pageJobTypes
		parts = append(parts, fmt.Sprintf(`
SELECT (m - 1) * %d AS c, %s AS type, %s AS instance_id, '' AS step,
       CASE WHEN m > %d THEN (CASE WHEN m %% 3 = 0 THEN 'running' ELSE 'queued' END)
            WHEN (m * 7919) %% 100 < 90 THEN 'succeeded'
            WHEN (m * 7919) %% 100 < 97 THEN 'failed'
            ELSE 'canceled' END AS st,
       m * 7919 %% 1000 AS h
FROM %s`, stepMs, caseOf(fmt.Sprintf("m %% %d", len(types)), types), noInstance, cut, d.series("m", standalone)))
	}
	if len(parts) > 0 {
		backoff, backoffMax := "backoff, backoff_max", "2000000000, 300000000000"
		if d.engine == "postgres" {
			backoff = "backoff_ns, backoff_max_ns"
		}
		lease := d.ts(fmt.Sprint((pageSpan + 7*24*time.Hour).Milliseconds()))
		end := "c + 1000 + h * 15"
		q := fmt.Sprintf(`
INSERT INTO jobs (type, params, priority, state, attempt, max_attempts, %s, instance_id, step,
                  epoch, processor, lease_until, run_after, progress, result, error,
                  created_at, started_at, finished_at, updated_at)
SELECT type, %s, CASE WHEN h %% 20 = 0 THEN 5 ELSE 0 END, st,
       CASE st WHEN 'queued' THEN 0 WHEN 'failed' THEN 3 ELSE 1 END, 3, %s, instance_id, step,
       CASE st WHEN 'queued' THEN 0 ELSE 1 END,
       CASE st WHEN 'queued' THEN '' ELSE 'proc-' || (h %% 4) END,
       CASE WHEN st = 'running' THEN %s END,
       %s,
       CASE st WHEN 'succeeded' THEN 100 WHEN 'running' THEN h %% 100 ELSE 0 END,
       CASE WHEN st = 'succeeded' THEN %s END,
       CASE st WHEN 'failed' THEN 'exit status 1: ffmpeg: Invalid data found when processing input' WHEN 'canceled' THEN 'canceled' ELSE '' END,
       %s,
       CASE WHEN st = 'queued' THEN NULL ELSE %s END,
       CASE WHEN st IN ('succeeded', 'failed', 'canceled') THEN %s END,
       %s
FROM (%s) AS u
ORDER BY c`,
			backoff,
			d.json(`'{"src": "/media/in/clip-' || h || '.mxf", "dst": "/media/out/"}'`),
			backoffMax, lease, d.ts("c"),
			d.json(`'{"bytes": ' || (h * 1000 + 7) || '}'`),
			d.ts("c"), d.ts("c + 500"), d.ts(end), d.ts(end),
			strings.Join(parts, "\nUNION ALL"))
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return ld, fmt.Errorf("load jobs: %w", err)
		}
	}
	// Steps: one per job of an instance, as the worker records them.
	res, err := tx.ExecContext(ctx, fmt.Sprintf(`
INSERT INTO steps (instance_id, path, step_id, kind, state, result, error, job_id, started_at, finished_at)
SELECT instance_id, step, step, 'job', CASE state WHEN 'queued' THEN 'running' ELSE state END,
       result, error, id, COALESCE(started_at, created_at), finished_at
FROM jobs WHERE id > %d AND instance_id > %d`, jobBase, instBase))
	if err != nil {
		return ld, fmt.Errorf("load steps: %w", err)
	}
	n, _ := res.RowsAffected()
	ld.Steps = int(n)
	for _, r := range []struct {
		q        string
		min, max *int64
	}{
		{fmt.Sprintf(`SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM instances WHERE id > %d`, instBase), &ld.MinInstance, &ld.MaxInstance},
		{fmt.Sprintf(`SELECT COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM jobs WHERE id > %d`, jobBase), &ld.MinJob, &ld.MaxJob},
	} {
		if err := tx.QueryRowContext(ctx, r.q).Scan(r.min, r.max); err != nil {
			return ld, err
		}
	}
	if err := tx.Commit(); err != nil {
		return ld, err
	}
	if ld.MaxInstance > 0 {
		ld.Instances = int(ld.MaxInstance - ld.MinInstance + 1)
	}
	if ld.MaxJob > 0 {
		ld.Jobs = int(ld.MaxJob - ld.MinJob + 1)
	}
	if db.engine == "postgres" {
		if _, err := db.sql.ExecContext(ctx, `VACUUM ANALYZE jobs, instances, steps`); err != nil {
			return ld, fmt.Errorf("vacuum analyze: %w", err)
		}
	}
	ld.Seconds = round3(time.Since(start).Seconds())
	return ld, nil
}
