-- Schema version 5 of the SQLite engine: rate and concurrency limits (issue 15).
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
