-- Claims the picked jobs $1 for node $2, lease $3 ms; records their attempts; in claim order.
WITH claimed AS (
    UPDATE offload_jobs j
    SET state = 'running', attempt = j.attempt + 1, node = $2,
        lease_until = offload_now_ms() + $3, updated_at = offload_now_ms()
    WHERE j.id = ANY($1) AND j.state = 'queued'
    RETURNING j.id, j.job, j.pool, j.params, j.attempt, j.max_attempts, j.timeout_ms,
              j.backoff_ms, j.backoff, j.created_at, j.run_at, j.priority
), started AS (
    INSERT INTO offload_attempts (job_id, attempt, node, started_at)
    SELECT c.id, c.attempt, $2, offload_now_ms() FROM claimed c
)
SELECT c.id, c.job, c.pool, c.params, c.attempt, c.max_attempts, c.timeout_ms, c.backoff_ms,
    c.backoff, c.created_at, c.run_at
FROM claimed c ORDER BY c.priority DESC, c.run_at, c.id
