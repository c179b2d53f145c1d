-- 0002: workflow templates, instances and their step records. Same
-- conventions as 0001: INTEGER unix milliseconds, JSON as TEXT checked with
-- json_valid, text compared in byte order (BINARY collation).

CREATE TABLE templates (
    name        TEXT    NOT NULL CHECK (name <> ''),
    version     INTEGER NOT NULL CHECK (version > 0),
    description TEXT    NOT NULL DEFAULT '',
    source      TEXT    NOT NULL,
    -- Compared byte for byte with a new import: equal bytes, same template.
    canonical   TEXT    NOT NULL CHECK (json_valid(canonical)),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;

CREATE TABLE instances (
    -- AUTOINCREMENT: ids are never reused after a purge (cursors, step
    -- records and jobs point at instances by id).
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Unique: one trigger event, one instance (DESIGN §2).
    name               TEXT    NOT NULL UNIQUE CHECK (name <> ''),
    template           TEXT    NOT NULL CHECK (template <> ''),
    version            INTEGER NOT NULL,
    args               TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(args)),
    priority           INTEGER NOT NULL DEFAULT 0,
    state              TEXT    NOT NULL CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'canceled')),
    progress           INTEGER NOT NULL DEFAULT 0,
    current            TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(current)),
    vars               TEXT    CHECK (vars IS NULL OR json_valid(vars)),
    output             TEXT    CHECK (output IS NULL OR json_valid(output)),
    error              TEXT    NOT NULL DEFAULT '',
    cancel_asked       INTEGER NOT NULL DEFAULT 0,
    -- '' when the template has none: such instances never wait for others.
    concurrency_key    TEXT    NOT NULL DEFAULT '',
    concurrency_policy TEXT    NOT NULL DEFAULT '',
    parent_id          INTEGER NOT NULL DEFAULT 0,
    parent_step        TEXT    NOT NULL DEFAULT '',
    -- The lease: worker '' and lease_until NULL when nobody holds it. The
    -- worker stays named after its lease expired, until another claims.
    worker             TEXT    NOT NULL DEFAULT '',
    epoch              INTEGER NOT NULL DEFAULT 0,
    lease_until        INTEGER,
    -- Due for a worker once wake_at <= now; NULL waits for an event.
    wake_at            INTEGER,
    wake_seq           INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    started_at         INTEGER,
    finished_at        INTEGER,
    updated_at         INTEGER NOT NULL
);

-- Claims read the due instances: (state, wake_at) ranges for 'pending' and
-- 'running'. state leads, as in jobs_lease: without ANALYZE statistics the
-- planner prefers instances_state (state = ?) to an index with a range on
-- its first column. Partial on wake_at: final instances and those waiting
-- for an event have none, so the index holds only what may become due.
CREATE INDEX instances_due ON instances (state, wake_at) WHERE wake_at IS NOT NULL;
-- The skip and queue policies look for older live instances of a key, and
-- an ending instance for the next pending one: key and state are equality
-- terms, id the order.
CREATE INDEX instances_key ON instances (concurrency_key, state, id);
-- Listing newest first by state or template; TemplateDelete looks for live
-- instances of a template.
CREATE INDEX instances_state ON instances (state, id);
CREATE INDEX instances_template ON instances (template, state, id);
CREATE INDEX instances_parent ON instances (parent_id, id) WHERE parent_id <> 0;
-- Purge of old final instances.
CREATE INDEX instances_finished ON instances (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE steps (
    -- Deleted with their instance (foreign_keys is on for every connection).
    instance_id INTEGER NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    path        TEXT    NOT NULL,
    step_id     TEXT    NOT NULL DEFAULT '',
    kind        TEXT    NOT NULL DEFAULT '',
    state       TEXT    NOT NULL CHECK (state IN ('running', 'succeeded', 'failed', 'skipped', 'canceled')),
    result      TEXT    CHECK (result IS NULL OR json_valid(result)),
    error       TEXT    NOT NULL DEFAULT '',
    job_id      INTEGER NOT NULL DEFAULT 0,
    child_id    INTEGER NOT NULL DEFAULT 0,
    wake_at     INTEGER,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    PRIMARY KEY (instance_id, path)
) WITHOUT ROWID;
