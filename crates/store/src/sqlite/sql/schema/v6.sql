-- Schema version 6 of the SQLite engine: rate and concurrency limits (issue 15).
--
-- - `queue_limits`: one row per limited queue, a pool (`kind = 'pool'`) or every job of a name
--   (`kind = 'job'`): at most `rate_limit` starts per `period_ms` (NULL: no rate) and at most
--   `max_running` running (NULL: no such limit). `tokens` is the token bucket in millionths of
--   a token as of `refilled_at` (`offload_store::rules::throttle`). The claim reads and updates
--   it in its transaction; the daemon replaces the rows from its configuration at start.
-- - `jobs_running`: the running jobs by pool and name, which the claim counts.

CREATE TABLE queue_limits (
    kind        TEXT    NOT NULL CHECK (kind IN ('pool', 'job')),
    name        TEXT    NOT NULL,
    rate_limit  INTEGER,
    period_ms   INTEGER,
    max_running INTEGER,
    tokens      INTEGER NOT NULL,
    refilled_at INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;

CREATE INDEX jobs_running ON jobs (pool, job) WHERE state = 'running';

-- `unique = "while-active"` (issue 15):
-- - `jobs.unique_key`: a unique job's key (`key:<idempotency key>` or `params:<sha-256 of its
--   canonical params>`, `offload_store::rules::submit::unique_key`); NULL for other jobs.
-- - `jobs_unique_active`: at most one unfinished job per (name, unique key); a submit finds it
--   there and returns it. A finished job leaves the index, so the next submit creates a job.
ALTER TABLE jobs ADD COLUMN unique_key TEXT;
CREATE UNIQUE INDEX jobs_unique_active ON jobs (job, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'queued', 'running', 'failed');

-- Idempotency keys scoped by job name (issue 15): the same key with two job names names two
-- jobs. `idempotency` is keyed by (job, key); the keys kept from before name their job's name
-- (a key whose job is gone is free anyway, and dropped).
CREATE TABLE idempotency_scoped (
    job        TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    job_id     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (job, key)
) WITHOUT ROWID;
INSERT INTO idempotency_scoped (job, key, job_id, created_at)
SELECT j.job, i.key, i.job_id, i.created_at FROM idempotency i JOIN jobs j ON j.id = i.job_id;
DROP TABLE idempotency;
ALTER TABLE idempotency_scoped RENAME TO idempotency;
