-- The last tick per schedule (never moved back by an older tick).
INSERT INTO cron_ticks (schedule, last_tick, job_id) VALUES (?1, ?2, ?3)
ON CONFLICT (schedule) DO UPDATE SET last_tick = excluded.last_tick, job_id = excluded.job_id
    WHERE excluded.last_tick > cron_ticks.last_tick
