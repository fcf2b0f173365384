-- A fresh round of attempts, numbered on after the earlier ones (schema v10), cut to the bound
-- of attempts per job ($3); the last error stays for the record. Then only the logs of the
-- job's last $2 attempts are kept.
WITH retried AS (
    UPDATE offload_jobs SET state = 'queued', run_at = offload_now_ms(),
        updated_at = offload_now_ms(), max_attempts = LEAST(attempt + max_attempts - retried_attempts, $3::bigint),
        retried_attempts = attempt, cancel_requested = false, result = NULL, node = NULL,
        lease_until = NULL
    WHERE id = $1
    RETURNING id, attempt
)
DELETE FROM offload_job_logs l USING retried r
WHERE l.job_id = r.id AND l.attempt <= r.attempt - $2
