-- 0005 (issue 13; renumber at merge if needed): bearer tokens with roles,
-- kept as the SHA-256 of the secret. revoked_at NULL: live.
CREATE TABLE tokens (
	name       TEXT PRIMARY KEY,
	role       TEXT NOT NULL CHECK (role IN ('admin','operator','viewer','processor','trigger')),
	triggers   TEXT NOT NULL DEFAULT '', -- trigger tokens: name patterns, comma-separated
	hash       BYTEA NOT NULL UNIQUE,
	created_at TIMESTAMPTZ NOT NULL,
	revoked_at TIMESTAMPTZ
);
