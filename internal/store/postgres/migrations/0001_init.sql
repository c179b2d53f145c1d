-- 0001: the core schema. Times are timestamptz written from the caller's
-- clock (never now()); durations are bigint nanoseconds, as in Go.
-- Names that lists sort by are COLLATE "C" so PostgreSQL orders them
-- byte-wise, exactly as Go and SQLite do, whatever the database's locale.

CREATE TABLE jobs (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type           text COLLATE "C" NOT NULL,
    -- json, not jsonb: params and results come back byte for byte as
    -- submitted, and nothing queries inside them.
    params         json NOT NULL,
    priority       integer NOT NULL DEFAULT 0,
    state          text NOT NULL
                   CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'canceled')),
    attempt        integer NOT NULL DEFAULT 0,
    max_attempts   integer NOT NULL,
    backoff_ns     bigint NOT NULL,
    backoff_max_ns bigint NOT NULL,
    timeout_ns     bigint NOT NULL DEFAULT 0,
    -- jsonb so a claim can test "selector <@ labels" (subset) in SQL.
    selector       jsonb NOT NULL DEFAULT '{}',
    instance_id    bigint,
    step           text NOT NULL DEFAULT '',
    -- NULL when the job was submitted without a key: NULLs never collide
    -- in the unique index below.
    key            text,
    epoch          bigint NOT NULL DEFAULT 0,
    processor      text NOT NULL DEFAULT '',
    lease_until    timestamptz,
    run_after      timestamptz NOT NULL,
    progress       integer NOT NULL DEFAULT 0,
    message        text NOT NULL DEFAULT '',
    result         json,
    error          text NOT NULL DEFAULT '',
    cancel_asked   boolean NOT NULL DEFAULT false,
    -- The epoch and digest of the last report (completion or release) that
    -- took effect, so that an exact repeat of it (a processor retrying
    -- after a lost answer) is recognised and answered without a conflict.
    reported_epoch bigint NOT NULL DEFAULT 0,
    report_digest  text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL,
    started_at     timestamptz,
    finished_at    timestamptz,
    updated_at     timestamptz NOT NULL
);

-- Idempotent submit: INSERT ... ON CONFLICT (key) DO NOTHING.
CREATE UNIQUE INDEX jobs_key ON jobs (key);

-- The claim path: an index scan in claim order over queued jobs of one
-- type only, so a claim stays O(log n) with millions queued and finished
-- jobs cost it nothing.
CREATE INDEX jobs_claim ON jobs (type, priority DESC, id) WHERE state = 'queued';

-- The rescuer's scan for expired leases.
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'running';

-- Running jobs per type (MaxRunning at claim) and per processor
-- (ProcessorList).
CREATE INDEX jobs_running_type ON jobs (type) WHERE state = 'running';
CREATE INDEX jobs_running_processor ON jobs (processor) WHERE state = 'running';

-- Lists filtered by state, newest first; re-prioritising an instance;
-- purging finished jobs.
CREATE INDEX jobs_state_id ON jobs (state, id);
CREATE INDEX jobs_instance ON jobs (instance_id) WHERE instance_id IS NOT NULL;
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE job_types (
    name        text COLLATE "C" PRIMARY KEY,
    max_running integer NOT NULL DEFAULT 0,
    rate        double precision NOT NULL DEFAULT 0,
    burst       integer NOT NULL DEFAULT 0,
    -- Token bucket of the rate limit: tokens left at tokens_at. NULL means
    -- a full bucket (a new or just changed limit).
    tokens      double precision,
    tokens_at   timestamptz
);

CREATE TABLE processors (
    id         text COLLATE "C" PRIMARY KEY,
    host       text NOT NULL DEFAULT '',
    labels     jsonb NOT NULL DEFAULT '{}',
    quota      jsonb NOT NULL DEFAULT '{}',
    draining   boolean NOT NULL DEFAULT false,
    last_seen  timestamptz NOT NULL,
    started_at timestamptz
);

CREATE TABLE idempotency (
    key         text PRIMARY KEY,
    fingerprint text NOT NULL,
    status      integer NOT NULL,
    -- bytea: the answer is replayed byte for byte.
    body        bytea,
    created_at  timestamptz NOT NULL
);

CREATE INDEX idempotency_created ON idempotency (created_at);

CREATE TABLE leases (
    name   text COLLATE "C" PRIMARY KEY,
    -- '' when released: the row stays so the epoch keeps growing.
    holder text NOT NULL,
    epoch  bigint NOT NULL,
    until  timestamptz NOT NULL
);
