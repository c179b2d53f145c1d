-- Indexes of the monitor's lists (issue 14: 100,000 instances, 1,000,000
-- jobs). Without them each poll read far more than a page:
-- jobs_created: the last-hour chart (GET /v1/jobs?created_after=) and its
-- count read the whole jobs table;
-- jobs_type_id: a list by type walked the primary key through every other
-- type (SQLite has its jobs_type);
-- jobs_type_state: a list by state and type (the monitor's "failed
-- transcodes") read every job of the type or of the state;
-- instances_template_state: a list by template and state read every
-- instance of the template (SQLite has its instances_template).
CREATE INDEX jobs_created ON jobs (created_at);
CREATE INDEX jobs_type_id ON jobs (type, id);
CREATE INDEX jobs_type_state ON jobs (type, state, id);
CREATE INDEX instances_template_state ON instances (template, state, id);
