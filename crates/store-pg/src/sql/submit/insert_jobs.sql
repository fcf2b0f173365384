-- Inserts jobs (arrays, in order). A job whose cron tick exists is skipped (`DO NOTHING`, the
-- unique index decides even between concurrent nodes); the tick table keeps the latest tick per
-- schedule. Returns the inserted ids with their state.
WITH ins AS (
    INSERT INTO offload_jobs (id, job, pool, params, state, priority, run_at, created_at,
        updated_at, max_attempts, timeout_ms, backoff_ms, idempotency_key, cron_schedule,
        cron_tick, backoff, keep_result_ms, unique_key)
    SELECT i.id, i.job, i.pool, i.params,
           CASE WHEN coalesce(i.run_at, t.now) > t.now THEN 'scheduled' ELSE 'queued' END,
           i.priority, coalesce(i.run_at, t.now), t.now, t.now, i.max_attempts, i.timeout_ms,
           i.backoff_ms, i.idempotency_key, i.cron_schedule, i.cron_tick, i.backoff,
           i.keep_result_ms, i.unique_key
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::json[], $5::int[], $6::bigint[],
                $7::bigint[], $8::bigint[], $9::bigint[], $10::text[], $11::text[],
                $12::bigint[], $13::json[], $14::bigint[], $15::text[]) WITH ORDINALITY
         AS i(id, job, pool, params, priority, run_at, max_attempts, timeout_ms, backoff_ms,
              idempotency_key, cron_schedule, cron_tick, backoff, keep_result_ms, unique_key,
              ord)
    CROSS JOIN (SELECT offload_now_ms() AS now) t
    ORDER BY i.ord
    ON CONFLICT (cron_schedule, cron_tick) WHERE cron_schedule IS NOT NULL DO NOTHING
    RETURNING id, state, pool, cron_schedule, cron_tick
), ticks AS (
    INSERT INTO offload_cron_ticks (schedule, last_tick, job_id)
    SELECT DISTINCT ON (cron_schedule) cron_schedule, cron_tick, id FROM ins
    WHERE cron_schedule IS NOT NULL ORDER BY cron_schedule, cron_tick DESC
    ON CONFLICT (schedule) DO UPDATE SET last_tick = excluded.last_tick,
        job_id = excluded.job_id WHERE excluded.last_tick > offload_cron_ticks.last_tick
)
SELECT id, state, pool FROM ins
