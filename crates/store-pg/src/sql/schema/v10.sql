-- Schema version 10 of the PostgreSQL engine: a manual retry keeps the job's history (issue 14).
--
-- - `offload_jobs.retried_attempts`: the attempts a job had when it was last retried by hand
--   (0: never). A retry no longer sets `attempt` back to 0: the next attempt is numbered on
--   (3 after 2), so the attempts and the logs of every attempt stay apart. The retry grants the
--   job its round of attempts again by raising `max_attempts` by
--   `max_attempts - retried_attempts` (its own number of attempts per round).
-- - `offload_job_logs_retried` goes: a retry keeps the older attempts' logs, but only those of
--   the job's last attempts (the daemon's `[limits] max_log_attempts_per_job`; older ones are
--   deleted by the retry itself).

ALTER TABLE offload_jobs ADD COLUMN retried_attempts bigint NOT NULL DEFAULT 0;

DROP TRIGGER offload_job_logs_retried ON offload_jobs;
DROP FUNCTION offload_job_logs_retried();
