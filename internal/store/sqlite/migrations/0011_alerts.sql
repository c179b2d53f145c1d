-- 0010 (issue 14): alerts and the delivery of their notifications. The
-- server that evaluates alerts (one at a time, through the lease
-- "server/alerts") keeps them here, so a takeover neither forgets a firing
-- alert nor notifies it again. deliveries: JSON list of model.AlertDelivery.
CREATE TABLE alerts (
	key         TEXT PRIMARY KEY,
	rule        TEXT NOT NULL,
	kind        TEXT NOT NULL,
	subject     TEXT NOT NULL,
	state       TEXT NOT NULL CHECK (state IN ('pending','firing','resolved')),
	summary     TEXT NOT NULL DEFAULT '',
	since       INTEGER NOT NULL,
	fired_at    INTEGER,
	resolved_at INTEGER,
	notify      TEXT NOT NULL DEFAULT '',
	deliveries  TEXT NOT NULL DEFAULT '[]',
	updated_at  INTEGER NOT NULL
);
CREATE INDEX alerts_updated ON alerts (updated_at);
-- The open ones are read at every evaluation.
CREATE INDEX alerts_open ON alerts (rule) WHERE state <> 'resolved' OR notify <> '';
