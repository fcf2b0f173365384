-- Deletes at most $6 jobs in one of the states $1, of job $2 and pool $3 when given, submitted
-- in [$4, $5) when given, oldest first, with their attempts and the keys that still name them.
WITH picked AS (
    SELECT id FROM offload_jobs
    WHERE state = ANY($1::text[])
        AND ($2::text IS NULL OR job = $2) AND ($3::text IS NULL OR pool = $3)
        AND ($4::bigint IS NULL OR created_at >= $4) AND ($5::bigint IS NULL OR created_at < $5)
    ORDER BY id LIMIT $6
    FOR UPDATE
), doomed AS (
    DELETE FROM offload_jobs j USING picked WHERE j.id = picked.id
    RETURNING j.id, j.idempotency_key, j.pool
), attempts AS (
    DELETE FROM offload_attempts WHERE job_id IN (SELECT id FROM doomed)
), keys AS (
    DELETE FROM offload_idempotency i USING doomed d
    WHERE i.key = d.idempotency_key AND i.job_id = d.id
)
SELECT pool, count(*) AS n FROM doomed GROUP BY pool
