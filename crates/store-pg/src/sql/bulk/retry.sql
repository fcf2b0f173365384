-- Retries at most $6 jobs in one of the states $1, of job $2 and pool $3 when given, submitted
-- in [$4, $5) when given, with fewer than $8 attempts (the bound per job), oldest first: a fresh round of attempts (as `retry`), keeping the
-- logs of each job's last $7 attempts. The pools that got due jobs, with how many.
WITH picked AS (
    SELECT id FROM offload_jobs
    WHERE state = ANY($1::text[])
        AND ($2::text IS NULL OR job = $2) AND ($3::text IS NULL OR pool = $3)
        AND ($4::bigint IS NULL OR created_at >= $4) AND ($5::bigint IS NULL OR created_at < $5)
        AND attempt < $8::bigint
    ORDER BY id LIMIT $6
    FOR UPDATE
), done AS (
    UPDATE offload_jobs j SET state = 'queued', run_at = offload_now_ms(),
        updated_at = offload_now_ms(), max_attempts = LEAST(j.attempt + j.max_attempts - j.retried_attempts, $8::bigint),
        retried_attempts = j.attempt, cancel_requested = false, result = NULL, node = NULL,
        lease_until = NULL
    FROM picked WHERE j.id = picked.id
    RETURNING j.id, j.pool, j.attempt
), trimmed AS (
    DELETE FROM offload_job_logs l USING done d
    WHERE l.job_id = d.id AND l.attempt <= d.attempt - $7
)
SELECT pool, count(*) AS n FROM done GROUP BY pool
