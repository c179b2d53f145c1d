-- 0001: the core tables. Times are INTEGER unix milliseconds (UTC), durations
-- INTEGER nanoseconds (exactly a Go time.Duration), JSON is TEXT checked with
-- json_valid so a malformed document is refused rather than stored.

CREATE TABLE jobs (
    -- AUTOINCREMENT: ids are never reused after a purge, so a client-held id
    -- or a paging cursor can never point at a different job.
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    type           TEXT    NOT NULL CHECK (type <> ''),
    params         TEXT    NOT NULL CHECK (json_valid(params)),
    priority       INTEGER NOT NULL DEFAULT 0,
    state          TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    attempt        INTEGER NOT NULL DEFAULT 0,
    max_attempts   INTEGER NOT NULL,
    backoff        INTEGER NOT NULL,
    backoff_max    INTEGER NOT NULL,
    timeout        INTEGER NOT NULL DEFAULT 0,
    selector       TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(selector)),
    instance_id    INTEGER NOT NULL DEFAULT 0,
    step           TEXT    NOT NULL DEFAULT '',
    job_key        TEXT    UNIQUE, -- NULL when none: NULLs never collide
    epoch          INTEGER NOT NULL DEFAULT 0,
    -- The epoch whose completion took effect last: lets JobComplete tell an
    -- exact repeat of a report (answered with the job) from a stale holder
    -- (refused). Claims, releases and rescues leave it alone.
    reported_epoch INTEGER NOT NULL DEFAULT 0,
    processor      TEXT    NOT NULL DEFAULT '',
    lease_until    INTEGER,
    run_after      INTEGER NOT NULL,
    progress       INTEGER NOT NULL DEFAULT 0,
    message        TEXT    NOT NULL DEFAULT '',
    result         TEXT    CHECK (result IS NULL OR json_valid(result)),
    error          TEXT    NOT NULL DEFAULT '',
    cancel_asked   INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER,
    updated_at     INTEGER NOT NULL
);

-- Claims walk queued jobs of one type in hand-out order; partial, so the
-- index holds only the queue, not the history.
CREATE INDEX jobs_claim ON jobs (type, priority DESC, id) WHERE state = 'queued';
-- Rescue finds expired leases. Not a partial index on lease_until: without
-- ANALYZE statistics the planner prefers jobs_state (state = ?) to a partial
-- range index and would scan every running job; (state, lease_until) beats
-- it on both columns.
CREATE INDEX jobs_lease ON jobs (state, lease_until);
-- MaxRunning and ProcessorList count running jobs.
CREATE INDEX jobs_running_type ON jobs (type) WHERE state = 'running';
CREATE INDEX jobs_running_processor ON jobs (processor) WHERE state = 'running';
-- Listing and counting by state, newest first.
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_type ON jobs (type, id);
CREATE INDEX jobs_instance ON jobs (instance_id, state) WHERE instance_id <> 0;
-- Purge of old final jobs.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE types (
    name        TEXT    PRIMARY KEY CHECK (name <> ''),
    max_running INTEGER NOT NULL DEFAULT 0,
    rate        REAL    NOT NULL DEFAULT 0,
    burst       INTEGER NOT NULL DEFAULT 0,
    -- Token bucket of the rate limit: tokens left at tokens_at. NULL
    -- tokens_at means a full bucket (never used since the last TypePut).
    tokens      REAL    NOT NULL DEFAULT 0,
    tokens_at   INTEGER
) WITHOUT ROWID;

CREATE TABLE processors (
    id        TEXT    PRIMARY KEY,
    host      TEXT    NOT NULL DEFAULT '',
    labels    TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(labels)),
    quota     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(quota)),
    draining  INTEGER NOT NULL DEFAULT 0,
    last_seen INTEGER NOT NULL,
    started   INTEGER
) WITHOUT ROWID;

CREATE TABLE idempotency (
    idem_key    TEXT    PRIMARY KEY,
    fingerprint TEXT    NOT NULL,
    status      INTEGER NOT NULL,
    body        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE leases (
    name   TEXT    PRIMARY KEY,
    -- '' when released: the row stays so the epoch keeps growing.
    holder TEXT    NOT NULL,
    epoch  INTEGER NOT NULL,
    until_at INTEGER NOT NULL
) WITHOUT ROWID;
