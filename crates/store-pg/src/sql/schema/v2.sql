-- Schema version 2 of the PostgreSQL engine: schedule guard rails. Released: never edit.
--
-- - `offload_schedules` gains the policies of an API schedule: `overlap` (`skip` or `queue`),
--   `pause_after_failures` (NULL: never) and `timezone` (an IANA name; NULL: UTC).
-- - `offload_cron_state`: per schedule name (config schedules too), its counters and whether it
--   is paused, shared by every node. Kept by row triggers on `offload_jobs`, so every path that
--   submits or ends a cron job counts it in the same transaction.
-- - `offload_jobs_cron_active`: the unfinished jobs of a schedule, for the `skip` overlap policy.

ALTER TABLE offload_schedules ADD COLUMN overlap text NOT NULL DEFAULT 'skip';
ALTER TABLE offload_schedules ADD COLUMN pause_after_failures bigint;
ALTER TABLE offload_schedules ADD COLUMN timezone text;

CREATE TABLE offload_cron_state (
    schedule             text   NOT NULL PRIMARY KEY,
    runs                 bigint NOT NULL DEFAULT 0,
    consecutive_failures bigint NOT NULL DEFAULT 0,
    last_success_at      bigint,
    last_failure_at      bigint,
    last_error           json,
    paused_at            bigint,
    paused_reason        text
);

CREATE INDEX offload_jobs_cron_active ON offload_jobs (cron_schedule)
    WHERE cron_schedule IS NOT NULL AND state IN ('scheduled', 'queued', 'running', 'failed');

CREATE FUNCTION offload_cron_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO offload_cron_state (schedule, runs) VALUES (NEW.cron_schedule, 1)
    ON CONFLICT (schedule) DO UPDATE SET runs = offload_cron_state.runs + 1;
    RETURN NULL;
END $$;

CREATE FUNCTION offload_cron_end() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'succeeded' THEN
        INSERT INTO offload_cron_state (schedule, last_success_at)
        VALUES (NEW.cron_schedule, NEW.updated_at)
        ON CONFLICT (schedule) DO UPDATE SET consecutive_failures = 0,
            last_success_at = excluded.last_success_at;
    ELSE
        INSERT INTO offload_cron_state (schedule, consecutive_failures, last_failure_at,
            last_error)
        VALUES (NEW.cron_schedule, 1, NEW.updated_at, NEW.error)
        ON CONFLICT (schedule) DO UPDATE SET
            consecutive_failures = offload_cron_state.consecutive_failures + 1,
            last_failure_at = excluded.last_failure_at, last_error = excluded.last_error;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER offload_jobs_cron_run AFTER INSERT ON offload_jobs
    FOR EACH ROW WHEN (NEW.cron_schedule IS NOT NULL) EXECUTE FUNCTION offload_cron_run();
CREATE TRIGGER offload_jobs_cron_end AFTER UPDATE OF state ON offload_jobs
    FOR EACH ROW WHEN (NEW.cron_schedule IS NOT NULL AND NEW.state IN ('succeeded', 'dead')
        AND OLD.state IS DISTINCT FROM NEW.state)
    EXECUTE FUNCTION offload_cron_end();

-- Schedules that already have jobs: their counters start from the jobs still kept.
INSERT INTO offload_cron_state (schedule, runs)
SELECT cron_schedule, count(*) FROM offload_jobs WHERE cron_schedule IS NOT NULL
GROUP BY cron_schedule;
