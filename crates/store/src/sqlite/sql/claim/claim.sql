-- Claims the next queued jobs of pool ?1 (at most ?2) for node ?3 until ?4: picked in claim
-- order (index `jobs_claim`, no sort), none while the pool is paused, skipping jobs whose name
-- is paused (`queue_pauses`). RETURNING comes in no particular order: the caller sorts.
UPDATE jobs SET state = 'running', attempt = attempt + 1, node = ?3, lease_until = ?4,
    updated_at = ?5
WHERE id IN (SELECT id FROM jobs WHERE pool = ?1 AND state = 'queued'
             AND NOT EXISTS (SELECT 1 FROM queue_pauses WHERE kind = 'pool' AND name = ?1)
             AND job NOT IN (SELECT name FROM queue_pauses WHERE kind = 'job')
             ORDER BY priority DESC, run_at, id LIMIT ?2)
RETURNING id, job, pool, params, attempt, max_attempts, timeout_ms, backoff_ms, backoff,
    created_at, run_at, priority
