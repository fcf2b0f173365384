-- The key ?1 of job name ?4 now names this job (the caller found no first job within the
-- window).
INSERT INTO idempotency (job, key, job_id, created_at) VALUES (?4, ?1, ?2, ?3)
ON CONFLICT (job, key) DO UPDATE SET job_id = excluded.job_id, created_at = excluded.created_at
