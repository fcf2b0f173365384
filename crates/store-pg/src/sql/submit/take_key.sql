-- Takes the idempotency key `$1` of job name `$4` for `$2`, unless a job took it within the
-- window (`$3` ms).
INSERT INTO offload_idempotency (job, key, job_id, created_at)
VALUES ($4, $1, $2, offload_now_ms())
ON CONFLICT (job, key) DO UPDATE SET job_id = excluded.job_id, created_at = excluded.created_at
    WHERE offload_idempotency.created_at <= excluded.created_at - $3
RETURNING job_id
