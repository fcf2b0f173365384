-- Every schedule's counters; `active` when one of its jobs is not finished (`skip` overlap).
SELECT s.schedule, s.runs, s.consecutive_failures, s.last_success_at, s.last_failure_at,
    s.last_error, s.paused_at, s.paused_reason,
    EXISTS (SELECT 1 FROM jobs j WHERE j.cron_schedule = s.schedule
        AND j.state IN ('scheduled', 'queued', 'running', 'failed')) AS active
FROM cron_state s ORDER BY s.schedule
