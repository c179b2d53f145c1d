-- The monitor's last-hour chart lists the jobs created after a time
-- (GET /v1/jobs?created_after=): without this index each page of it, and
-- its count, read the whole jobs table (issue 14: 1,000,000 jobs).
CREATE INDEX jobs_created ON jobs (created_at);
-- jobs_type_state: a list by state and type (the monitor's "failed
-- transcodes") read every job of the type or of the state (p99 347 ms at
-- 1,000,000 jobs); jobs_type stays for a list by type alone, in id order.
CREATE INDEX jobs_type_state ON jobs (type, state, id);
