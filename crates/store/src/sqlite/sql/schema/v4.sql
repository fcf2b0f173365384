-- Schema version 4 of the SQLite engine: queue semantics (issue 15).
--
-- - `jobs.backoff`: the job's retry backoff as JSON (`offload_store::Backoff`: a curve, a
--   maximum delay, jitter); NULL for a job that named none, which retries as before
--   (`backoff_ms · 2^(attempt-1)`, at most one hour).
-- - `jobs.keep_result_ms`: how long a succeeded job (and its result) is kept after it ended;
--   NULL: the daemon's retention, as for dead and cancelled jobs. Purge honours it.

ALTER TABLE jobs ADD COLUMN backoff TEXT;
ALTER TABLE jobs ADD COLUMN keep_result_ms INTEGER;
