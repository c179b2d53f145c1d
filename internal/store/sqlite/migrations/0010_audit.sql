-- 0009 (issue 13): the audit trail of mutating API calls, one row a call,
-- answered. No request bodies (they may hold secrets). id orders the
-- rows (AUTOINCREMENT: never reused after a purge, so a cursor stays
-- valid); at (Unix ms) is what the filters and the purge read.
CREATE TABLE audit (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	at         INTEGER NOT NULL,
	principal  TEXT NOT NULL,
	role       TEXT NOT NULL DEFAULT '',
	method     TEXT NOT NULL,
	route      TEXT NOT NULL,
	target     TEXT NOT NULL DEFAULT '',
	status     INTEGER NOT NULL,
	remote     TEXT NOT NULL DEFAULT '',
	request_id TEXT NOT NULL DEFAULT '',
	outcome    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_principal ON audit (principal, id);
CREATE INDEX audit_route ON audit (route, id);
