-- 0005: the digest of the report that last took effect on a job
-- (store.CompletionDigest, or store.ReleaseDigest), next to its epoch
-- (reported_epoch), as PostgreSQL keeps it: a report repeated at the same
-- epoch is answered as before only when identical; a different one is
-- refused (DESIGN §10). SQLite cannot compute the digest, so jobs reported
-- before this migration keep '': a repeat of such an old report is refused
-- as any other report of a job that is no longer running.
ALTER TABLE jobs ADD COLUMN report_digest TEXT NOT NULL DEFAULT '';
