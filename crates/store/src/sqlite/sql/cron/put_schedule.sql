INSERT INTO schedules (name, cron, job, params, missed, created_at, overlap,
    pause_after_failures, timezone, jitter_ms, failure_backoff_ms, failure_backoff_max_ms)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, job = excluded.job,
    params = excluded.params, missed = excluded.missed, created_at = excluded.created_at,
    overlap = excluded.overlap, pause_after_failures = excluded.pause_after_failures,
    timezone = excluded.timezone, jitter_ms = excluded.jitter_ms,
    failure_backoff_ms = excluded.failure_backoff_ms,
    failure_backoff_max_ms = excluded.failure_backoff_max_ms
