-- The job a cron tick created.
SELECT id, state FROM offload_jobs WHERE cron_schedule = $1 AND cron_tick = $2
