-- 0003: triggers (schedules, folder and table watchers): their state, the
-- watchers' mirrors and the records of what each event became. Same
-- conventions as 0001: times from the caller's clock, sort keys COLLATE "C".

-- One row per trigger. TriggerDo locks it (SELECT ... FOR UPDATE) for the
-- whole transaction that consumes events, which serializes the copies of a
-- trigger running on any number of servers.
CREATE TABLE triggers (
    name          text COLLATE "C" PRIMARY KEY,
    kind          text NOT NULL,
    -- json, not jsonb: returned byte for byte as the service stored it;
    -- only the service reads inside.
    state         json NOT NULL DEFAULT '{}',
    -- Entries in this trigger's mirror. Kept by the mirror methods, which
    -- only run under the row lock above, so it is exact; a count(*) at
    -- every TriggerDo would cost a scan of the whole mirror per page.
    mirrored      bigint NOT NULL DEFAULT 0,
    last_event_at timestamptz,
    last_error    text NOT NULL DEFAULT '',
    error_at      timestamptz,
    updated_at    timestamptz NOT NULL
);

-- A watcher's mirror: what the core DB last saw of each file or row.
--
-- There is deliberately no index on seen_at: every full pass touches the
-- seen_at of every unchanged entry (100,000 files: 100,000 updates per
-- poll), and with seen_at unindexed those are HOT updates (fillfactor 80
-- leaves them room on the page) that write no index entries. MirrorStale,
-- which runs once per completed pass, walks the primary key in key order
-- instead, which is the order it answers in anyway.
CREATE TABLE mirror (
    trigger     text COLLATE "C" NOT NULL,
    -- COLLATE "C": MirrorStale answers by key in byte order.
    key         text COLLATE "C" NOT NULL,
    fingerprint text NOT NULL,
    data        json, -- NULL: none
    seen_at     timestamptz NOT NULL,
    PRIMARY KEY (trigger, key)
) WITH (fillfactor = 80);

-- What each event became. (trigger, key, action) is unique: a repeated
-- event is recorded once (Record: INSERT ... ON CONFLICT DO NOTHING).
CREATE TABLE trigger_records (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trigger     text COLLATE "C" NOT NULL,
    key         text COLLATE "C" NOT NULL,
    event       text NOT NULL DEFAULT '',
    action      text NOT NULL,
    instance_id bigint NOT NULL DEFAULT 0, -- 0: none
    instance    text NOT NULL DEFAULT '',
    reason      text NOT NULL DEFAULT '',
    at          timestamptz NOT NULL,
    UNIQUE (trigger, key, action)
);

-- TriggerRecords: a trigger's newest records first.
CREATE INDEX trigger_records_newest ON trigger_records (trigger, id DESC);

-- ActiveInstances (overlap and throttle rules of schedules): the live
-- instances a trigger started. Same predicate as liveStates, so the
-- planner uses it.
CREATE INDEX instances_live_trigger ON instances (trigger)
    WHERE state IN ('pending', 'running');
