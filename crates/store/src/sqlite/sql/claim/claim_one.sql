-- Claims job ?1 for node ?2 until ?3.
UPDATE jobs SET state = 'running', attempt = attempt + 1, node = ?2, lease_until = ?3,
    updated_at = ?4
WHERE id = ?1 AND state = 'queued'
RETURNING id, job, pool, params, attempt, max_attempts, timeout_ms, backoff_ms, backoff,
    created_at, run_at, priority
