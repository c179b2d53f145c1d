-- 0003: triggers (schedules, folder and table watchers). Their state, the
-- watchers' mirrors and the record of what became of each event live here,
-- not in the trigger processes, so any copy of a trigger continues where
-- another stopped (DESIGN §2, exactly-once triggering). Same conventions as
-- 0001: INTEGER unix milliseconds, JSON as TEXT checked with json_valid,
-- text compared in byte order. "trigger" is quoted everywhere: it is an SQL
-- keyword (CREATE TRIGGER).

-- The trigger that started an instance ('' for the others).
ALTER TABLE instances ADD COLUMN "trigger" TEXT NOT NULL DEFAULT '';
-- ActiveInstances (overlap and throttle policies) counts the live
-- instances of one trigger. Partial: final instances, the vast majority
-- over time, are not in it.
CREATE INDEX instances_trigger ON instances ("trigger") WHERE state IN ('pending', 'running');

CREATE TABLE triggers (
    name          TEXT    PRIMARY KEY CHECK (name <> ''),
    kind          TEXT    NOT NULL CHECK (kind <> ''),
    -- Kind-specific: a schedule's last fire time, a watcher's passes, a
    -- table cursor. Replaced whole by TriggerTx.SetState.
    state         TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(state)),
    last_event_at INTEGER,
    last_error    TEXT    NOT NULL DEFAULT '',
    error_at      INTEGER,
    updated_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- What a watcher last saw of each file or row, keyed by path or row key.
-- WITHOUT ROWID: looked up by (trigger, key) on every page, and most
-- entries are small (a fingerprint and a few fields).
CREATE TABLE mirror (
    "trigger"   TEXT    NOT NULL REFERENCES triggers (name) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL,
    data        TEXT    CHECK (data IS NULL OR json_valid(data)),
    seen_at     INTEGER NOT NULL,
    PRIMARY KEY ("trigger", key)
) WITHOUT ROWID;
-- The end of a full pass looks for the entries not seen since it began.
CREATE INDEX mirror_seen ON mirror ("trigger", seen_at);

CREATE TABLE trigger_records (
    -- AUTOINCREMENT: "newest first" is id order, so ids must keep growing
    -- even after the newest records were deleted.
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    "trigger"   TEXT    NOT NULL REFERENCES triggers (name) ON DELETE CASCADE,
    key         TEXT    NOT NULL,
    event       TEXT    NOT NULL DEFAULT '',
    action      TEXT    NOT NULL CHECK (action <> ''),
    instance_id INTEGER NOT NULL DEFAULT 0,
    instance    TEXT    NOT NULL DEFAULT '',
    reason      TEXT    NOT NULL DEFAULT '',
    at          INTEGER NOT NULL,
    -- One event, one outcome: a copy that handles the event again records
    -- nothing new.
    UNIQUE ("trigger", key, action)
);
-- A trigger's newest records.
CREATE INDEX trigger_records_newest ON trigger_records ("trigger", id DESC);
