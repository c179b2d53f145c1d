-- 0008: the change sequence of a watcher's mirror entries. Each observation
-- that changes a trigger's mirror takes the next number of that trigger's
-- sequence (kept in its state, under its row lock) and stamps the entries it
-- writes with it. A watcher copy says which number it knew before it read the
-- source; an entry changed after that number by another copy may be newer
-- than what this copy read, so its change waits for a fresh read instead of
-- starting a second instance (internal/server/triggers, observe.go).
-- Entries from before this migration count as changed at 0.
ALTER TABLE mirror ADD COLUMN changed_seq INTEGER NOT NULL DEFAULT 0;
