-- Deletes terminal jobs last updated before $1 (a succeeded job with its own keep_result_ms: once
-- that has passed, whatever $1 says), their attempts, and the keys that still name them.
WITH doomed AS (
    DELETE FROM offload_jobs
    WHERE state IN ('succeeded', 'dead', 'cancelled')
        AND CASE WHEN state = 'succeeded' AND keep_result_ms IS NOT NULL
            THEN updated_at + keep_result_ms <= offload_now_ms() ELSE updated_at < $1 END
    RETURNING id, idempotency_key
), attempts AS (
    DELETE FROM offload_attempts WHERE job_id IN (SELECT id FROM doomed)
), keys AS (
    DELETE FROM offload_idempotency i USING doomed d
    WHERE i.key = d.idempotency_key AND i.job_id = d.id
)
SELECT count(*) AS n FROM doomed
