SELECT name, cron, job, params, missed, created_at FROM schedules ORDER BY name
