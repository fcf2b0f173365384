-- Deletes job $1, its attempts and the key that still names it.
WITH doomed AS (
    DELETE FROM offload_jobs WHERE id = $1 RETURNING id, idempotency_key
), attempts AS (
    DELETE FROM offload_attempts WHERE job_id IN (SELECT id FROM doomed)
), keys AS (
    DELETE FROM offload_idempotency i USING doomed d
    WHERE i.key = d.idempotency_key AND i.job_id = d.id
)
SELECT count(*) AS n FROM doomed
