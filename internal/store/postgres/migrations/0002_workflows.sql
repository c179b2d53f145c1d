-- 0002: workflow templates, instances and their step records. Same
-- conventions as 0001: times from the caller's clock, sort keys COLLATE "C".

CREATE TABLE templates (
    name        text COLLATE "C" NOT NULL,
    version     integer NOT NULL CHECK (version > 0),
    description text NOT NULL DEFAULT '',
    source      text NOT NULL,
    -- bytea: "equal bytes = identical template" is a byte comparison, and
    -- nothing queries inside the document.
    canonical   bytea NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE instances (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               text COLLATE "C" NOT NULL,
    template           text COLLATE "C" NOT NULL,
    version            integer NOT NULL,
    -- json, not jsonb: returned byte for byte as given.
    args               json NOT NULL,
    priority           integer NOT NULL DEFAULT 0,
    state              text NOT NULL
                       CHECK (state IN ('pending', 'running', 'succeeded', 'failed', 'canceled')),
    progress           integer NOT NULL DEFAULT 0,
    current            jsonb, -- paths of the activities in flight; NULL: none
    vars               json,
    output             json,
    error              text NOT NULL DEFAULT '',
    cancel_asked       boolean NOT NULL DEFAULT false,
    -- '' when the instance takes part in no concurrency group.
    concurrency_key    text COLLATE "C" NOT NULL DEFAULT '',
    -- As given: '' (as 'allow') when the starter set none.
    concurrency_policy text NOT NULL DEFAULT ''
                       CHECK (concurrency_policy IN ('', 'allow', 'skip', 'queue')),
    -- No foreign key: a parent and its children are purged independently.
    parent_id          bigint,
    parent_step        text NOT NULL DEFAULT '',
    -- The trigger that started it ('' for none).
    trigger            text NOT NULL DEFAULT '',
    -- The lease: '' when nobody holds it. epoch grows on every change of
    -- holder and fences the holder's advances.
    worker             text NOT NULL DEFAULT '',
    epoch              bigint NOT NULL DEFAULT 0,
    lease_until        timestamptz,
    -- When a worker should look again; NULL: only on an event. wake_seq
    -- counts events, so an advance decided before one does not bury it.
    wake_at            timestamptz,
    wake_seq           bigint NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL,
    started_at         timestamptz,
    finished_at        timestamptz,
    updated_at         timestamptz NOT NULL
);

-- Instance names are unique: what makes triggering exactly-once
-- (INSERT ... ON CONFLICT (name) DO NOTHING).
CREATE UNIQUE INDEX instances_name ON instances (name);

-- The claim path: only instances due some time (wake_at set) and not final
-- are in it, so instances waiting for an event (wake_at NULL, most running
-- ones) and finished ones cost a claim nothing; a claim reads the range
-- wake_at <= now, i.e. what is due.
CREATE INDEX instances_due ON instances (wake_at)
    WHERE state IN ('pending', 'running') AND wake_at IS NOT NULL;

-- Concurrency groups: "is there an older live instance of this key" (the
-- queue rule at claim, the skip rule at create, the next one to wake).
CREATE INDEX instances_key ON instances (concurrency_key, id)
    WHERE state IN ('pending', 'running') AND concurrency_key <> '';

-- TemplateDelete's "any live instance of this template".
CREATE INDEX instances_live_template ON instances (template)
    WHERE state IN ('pending', 'running');

-- Lists (newest first) by state, template or parent; purging.
CREATE INDEX instances_state_id ON instances (state, id);
CREATE INDEX instances_template_id ON instances (template, id);
CREATE INDEX instances_parent ON instances (parent_id, id) WHERE parent_id IS NOT NULL;
CREATE INDEX instances_finished ON instances (finished_at) WHERE finished_at IS NOT NULL;

-- One record per activity execution, keyed by its path in the instance:
-- the interpreter's durable memory.
CREATE TABLE steps (
    instance_id bigint NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    path        text COLLATE "C" NOT NULL,
    step_id     text NOT NULL DEFAULT '',
    kind        text NOT NULL DEFAULT '',
    state       text NOT NULL,
    result      json,
    error       text NOT NULL DEFAULT '',
    -- 0: none. An upsert never turns a set id back into 0.
    job_id      bigint NOT NULL DEFAULT 0,
    child_id    bigint NOT NULL DEFAULT 0,
    wake_at     timestamptz,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    PRIMARY KEY (instance_id, path)
);
