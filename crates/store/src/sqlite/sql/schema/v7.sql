-- Schema version 7 of the SQLite engine: per-attempt job logs (issue 14).
--
-- - `job_logs`: one row per captured line of an attempt's stdout/stderr, in `seq` order within
--   the attempt (`stream`: `stdout` or `stderr`; `shared`: printed by a pool worker running
--   several jobs at once; `marker`: the attempt's last line, saying what was dropped over the
--   limit). Bounded per attempt by the daemon (`[limits] max_log_bytes_per_attempt`).
-- - Triggers keep them with their job: deleting a job (delete, bulk delete, purge) deletes its
--   lines; a manual retry (the only statement that sets `attempt` back to 0) drops them, since
--   its attempts are numbered from 1 again.

CREATE TABLE job_logs (
    job_id  TEXT    NOT NULL,
    attempt INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    stream  TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    line    TEXT    NOT NULL,
    shared  INTEGER NOT NULL DEFAULT 0,
    marker  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, attempt, seq)
) WITHOUT ROWID;

CREATE TRIGGER job_logs_gone AFTER DELETE ON jobs
BEGIN
    DELETE FROM job_logs WHERE job_id = OLD.id;
END;

CREATE TRIGGER job_logs_retried AFTER UPDATE OF attempt ON jobs
WHEN NEW.attempt = 0 AND OLD.attempt > 0
BEGIN
    DELETE FROM job_logs WHERE job_id = NEW.id;
END;
