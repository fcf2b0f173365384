-- Schema version 10 of the SQLite engine: a manual retry keeps the job's history (issue 14).
--
-- - `jobs.retried_attempts`: the attempts a job had when it was last retried by hand (0: never).
--   A retry no longer sets `attempt` back to 0: the next attempt is numbered on (3 after 2), so
--   the `attempts` rows and `job_logs` of every attempt stay apart. The retry grants the job
--   its round of attempts again by raising `max_attempts` by `max_attempts - retried_attempts`
--   (its own number of attempts per round).
-- - `job_logs_retried` goes: a retry keeps the older attempts' logs, but only those of the job's
--   last attempts (the daemon's `[limits] max_log_attempts_per_job`; older ones are deleted by
--   the retry itself, `sql/logs/trim.sql`).

ALTER TABLE jobs ADD COLUMN retried_attempts INTEGER NOT NULL DEFAULT 0;

DROP TRIGGER job_logs_retried;
