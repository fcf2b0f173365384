-- Schema version 2 of the SQLite engine: schedule guard rails. Released: never edit.
--
-- - `schedules` gains the policies of an API schedule: `overlap` (`skip` or `queue`),
--   `pause_after_failures` (NULL: never) and `timezone` (an IANA name; NULL: UTC).
-- - `cron_state`: per schedule name (config schedules too), its counters and whether it is
--   paused. Kept by triggers on `jobs`, so every path that submits or ends a cron job (claim,
--   complete, lease recovery, cancel, retry) counts it in the same transaction.
-- - `jobs_cron_active`: the unfinished jobs of a schedule, for the `skip` overlap policy.

ALTER TABLE schedules ADD COLUMN overlap TEXT NOT NULL DEFAULT 'skip';
ALTER TABLE schedules ADD COLUMN pause_after_failures INTEGER;
ALTER TABLE schedules ADD COLUMN timezone TEXT;

CREATE TABLE cron_state (
    schedule             TEXT    NOT NULL PRIMARY KEY,
    runs                 INTEGER NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    last_success_at      INTEGER,
    last_failure_at      INTEGER,
    last_error           TEXT,
    paused_at            INTEGER,
    paused_reason        TEXT
) WITHOUT ROWID;

CREATE INDEX jobs_cron_active ON jobs (cron_schedule)
    WHERE cron_schedule IS NOT NULL AND state IN ('scheduled', 'queued', 'running', 'failed');

CREATE TRIGGER cron_run AFTER INSERT ON jobs WHEN NEW.cron_schedule IS NOT NULL
BEGIN
    INSERT INTO cron_state (schedule, runs) VALUES (NEW.cron_schedule, 1)
    ON CONFLICT (schedule) DO UPDATE SET runs = runs + 1;
END;

CREATE TRIGGER cron_success AFTER UPDATE OF state ON jobs
WHEN NEW.cron_schedule IS NOT NULL AND NEW.state = 'succeeded' AND OLD.state <> 'succeeded'
BEGIN
    INSERT INTO cron_state (schedule, last_success_at) VALUES (NEW.cron_schedule, NEW.updated_at)
    ON CONFLICT (schedule) DO UPDATE SET consecutive_failures = 0,
        last_success_at = excluded.last_success_at;
END;

CREATE TRIGGER cron_failure AFTER UPDATE OF state ON jobs
WHEN NEW.cron_schedule IS NOT NULL AND NEW.state = 'dead' AND OLD.state <> 'dead'
BEGIN
    INSERT INTO cron_state (schedule, consecutive_failures, last_failure_at, last_error)
    VALUES (NEW.cron_schedule, 1, NEW.updated_at, NEW.error)
    ON CONFLICT (schedule) DO UPDATE SET consecutive_failures = consecutive_failures + 1,
        last_failure_at = excluded.last_failure_at, last_error = excluded.last_error;
END;

-- Schedules that already have jobs: their counters start from the jobs still kept.
INSERT INTO cron_state (schedule, runs)
SELECT cron_schedule, count(*) FROM jobs WHERE cron_schedule IS NOT NULL GROUP BY cron_schedule;
