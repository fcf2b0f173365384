-- Jobs newest first. The marker after `WHERE true` becomes the filter's conditions
-- (`AND state = $n`, `AND job = $n`, `AND id < $n`) and the one after `LIMIT` the last
-- parameter: each combination is its own statement, planned on its own index.
SELECT id, job, pool, params, state, priority, run_at, created_at, updated_at, attempt,
    max_attempts, timeout_ms, backoff_ms, backoff, keep_result_ms, idempotency_key, progress, result, error,
    cancel_requested, node, lease_until, cron_schedule, after_ids, after_policy, waiting_on
FROM offload_jobs WHERE true {filters}
ORDER BY id DESC LIMIT {limit}
