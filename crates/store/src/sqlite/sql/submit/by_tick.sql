-- The job a cron tick created, if any (index `jobs_cron_tick`).
SELECT id, state FROM jobs WHERE cron_schedule = ?1 AND cron_tick = ?2
