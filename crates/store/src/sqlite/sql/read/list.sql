-- Jobs newest first. The marker after `WHERE 1` becomes the filter's conditions
-- (`AND state = ?`, `AND job = ?`, `AND id < ?`): each combination is its own statement, planned
-- on its own index.
SELECT id, job, pool, params, state, priority, run_at, created_at, updated_at, attempt,
    max_attempts, timeout_ms, backoff_ms, backoff, keep_result_ms, idempotency_key, progress, result, error,
    cancel_requested, node, lease_until, cron_schedule, after_ids, after_policy, waiting_on
FROM jobs WHERE 1 {filters}
ORDER BY id DESC LIMIT ?
