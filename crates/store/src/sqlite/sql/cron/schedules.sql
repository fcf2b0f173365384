SELECT name, cron, job, params, missed, created_at, overlap, pause_after_failures, timezone,
    jitter_ms, failure_backoff_ms, failure_backoff_max_ms
FROM schedules ORDER BY name
