-- 0004: a claim's Idempotency-Key on the jobs it claimed. A retried claim
-- (its answer lost in transit) finds its jobs through it, running for the
-- same processor, instead of claiming more: no idempotency record, no
-- second commit per claim. '' for jobs claimed without a key, and for
-- jobs never claimed. Looked up through jobs_running_processor (processor)
-- WHERE state = 'running': a processor runs few jobs, so no index of its
-- own.
ALTER TABLE jobs ADD COLUMN claim_key text NOT NULL DEFAULT '';
