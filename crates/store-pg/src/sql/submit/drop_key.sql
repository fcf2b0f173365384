-- The key does not name a job that was not created.
DELETE FROM offload_idempotency WHERE key = $1 AND job_id = $2
