-- 0008 (issue 13): the audit trail of mutating API calls, one row a call,
-- answered. No request bodies (they may hold secrets). id orders the
-- rows (lists are newest first and page by it); at is what the filters
-- and the purge read.
CREATE TABLE audit (
	id         BIGSERIAL PRIMARY KEY,
	at         TIMESTAMPTZ NOT NULL,
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
