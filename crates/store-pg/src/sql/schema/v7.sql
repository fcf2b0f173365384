-- Schema version 7 of the PostgreSQL engine: per-attempt job logs (issue 14).
--
-- - `offload_job_logs`: one row per captured line of an attempt's stdout/stderr, in `seq` order
--   within the attempt (`stream`: `stdout` or `stderr`; `shared`: printed by a pool worker
--   running several jobs at once; `marker`: the attempt's last line, saying what was dropped
--   over the limit). Bounded per attempt by the daemon (`[limits] max_log_bytes_per_attempt`).
-- - Triggers keep them with their job: deleting jobs (delete, bulk delete, purge) deletes their
--   lines (one statement-level trigger per statement); a manual retry (the only statement that
--   sets `attempt` back to 0) drops them, since its attempts are numbered from 1 again. No
--   foreign key: an append racing a delete skips the line instead of failing its batch.

CREATE TABLE offload_job_logs (
    job_id  uuid    NOT NULL,
    attempt bigint  NOT NULL,
    seq     bigint  NOT NULL,
    stream  text    NOT NULL,
    at      bigint  NOT NULL,
    line    text    NOT NULL,
    shared  boolean NOT NULL DEFAULT false,
    marker  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (job_id, attempt, seq)
);

CREATE FUNCTION offload_job_logs_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM offload_job_logs l USING gone g WHERE l.job_id = g.id;
    RETURN NULL;
END $$;

CREATE TRIGGER offload_job_logs_gone AFTER DELETE ON offload_jobs
    REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION offload_job_logs_gone();

CREATE FUNCTION offload_job_logs_retried() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM offload_job_logs WHERE job_id = NEW.id;
    RETURN NULL;
END $$;

CREATE TRIGGER offload_job_logs_retried AFTER UPDATE OF attempt ON offload_jobs
    FOR EACH ROW WHEN (NEW.attempt = 0 AND OLD.attempt > 0)
    EXECUTE FUNCTION offload_job_logs_retried();
