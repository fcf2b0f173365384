INSERT INTO jobs (id, job, pool, params, state, priority, run_at, created_at, updated_at,
    max_attempts, timeout_ms, backoff_ms, idempotency_key, cron_schedule, cron_tick, backoff,
    keep_result_ms, unique_key)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
