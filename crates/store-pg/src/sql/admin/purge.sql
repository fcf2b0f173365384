-- Deletes terminal jobs last updated before $1, their attempts, and the keys that still name them.
WITH doomed AS (
    DELETE FROM offload_jobs
    WHERE state IN ('succeeded', 'dead', 'cancelled') AND updated_at < $1
    RETURNING id, idempotency_key
), attempts AS (
    DELETE FROM offload_attempts WHERE job_id IN (SELECT id FROM doomed)
), keys AS (
    DELETE FROM offload_idempotency i USING doomed d
    WHERE i.key = d.idempotency_key AND i.job_id = d.id
)
SELECT count(*) AS n FROM doomed
