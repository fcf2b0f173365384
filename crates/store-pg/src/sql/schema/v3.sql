-- Schema version 3 of the PostgreSQL engine: queue semantics (issue 15).
--
-- - `offload_jobs.backoff`: the job's retry backoff as JSON (`offload_store::Backoff`: a curve,
--   a maximum delay, jitter); NULL for a job that named none, which retries as before
--   (`backoff_ms · 2^(attempt-1)`, at most one hour).

ALTER TABLE offload_jobs ADD COLUMN backoff json;
