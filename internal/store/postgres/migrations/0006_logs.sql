-- 0006 (issue 14): log lines of workflow instances (job_id 0) and jobs.
-- seq is the readers' cursor; dropped > 0 marks the one line that counts
-- the lines dropped past the bound. Deleted with their owner's purge.
CREATE TABLE log_lines (
	seq         BIGSERIAL PRIMARY KEY,
	instance_id BIGINT NOT NULL DEFAULT 0,
	job_id      BIGINT NOT NULL DEFAULT 0,
	at          TIMESTAMPTZ NOT NULL,
	level       TEXT NOT NULL,
	message     TEXT NOT NULL,
	dropped     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX log_lines_instance ON log_lines (instance_id, seq);
CREATE INDEX log_lines_job ON log_lines (job_id, seq) WHERE job_id <> 0;
