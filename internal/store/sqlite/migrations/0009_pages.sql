-- The monitor's last-hour chart lists the jobs created after a time
-- (GET /v1/jobs?created_after=): without this index each page of it, and
-- its count, read the whole jobs table (issue 14: 1,000,000 jobs).
CREATE INDEX jobs_created ON jobs (created_at);
