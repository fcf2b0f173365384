SELECT id, job, pool, params, state, priority, run_at, created_at, updated_at, attempt,
    max_attempts, timeout_ms, backoff_ms, backoff, keep_result_ms, idempotency_key, progress, result, error,
    cancel_requested, node, lease_until, cron_schedule, after_ids, after_policy, waiting_on
FROM offload_jobs WHERE id = $1
