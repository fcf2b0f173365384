SELECT name, cron, job, params, missed, created_at FROM offload_schedules ORDER BY name
