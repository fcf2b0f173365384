-- Takes an idempotency key for `$2`, unless a job took it within the window (`$3` ms).
INSERT INTO offload_idempotency (key, job_id, created_at) VALUES ($1, $2, offload_now_ms())
ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id, created_at = excluded.created_at
    WHERE offload_idempotency.created_at <= excluded.created_at - $3
RETURNING job_id
