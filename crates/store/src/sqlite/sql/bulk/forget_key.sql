-- The idempotency key that still names job ?1 is free again (before the job is deleted).
DELETE FROM idempotency
WHERE key = (SELECT idempotency_key FROM jobs WHERE id = ?1) AND job_id = ?1
