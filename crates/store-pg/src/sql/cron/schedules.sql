SELECT name, cron, job, params, missed, created_at, overlap, pause_after_failures, timezone
FROM offload_schedules ORDER BY name
