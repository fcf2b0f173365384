-- The job an idempotency key ?1 of job name ?2 names, with what the window and the params
-- check need.
SELECT i.job_id AS id, i.created_at AS key_created_at, j.state, j.job, j.params
FROM idempotency i JOIN jobs j ON j.id = i.job_id
WHERE i.key = ?1 AND i.job = ?2
