-- The key now names this job (the caller found no first job within the window).
INSERT INTO idempotency (key, job_id, created_at) VALUES (?1, ?2, ?3)
ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id, created_at = excluded.created_at
