-- The job the key `$1` of job name `$2` names (NULL columns: the job is gone).
SELECT i.job_id, j.state, j.job, j.params FROM offload_idempotency i
LEFT JOIN offload_jobs j ON j.id = i.job_id WHERE i.key = $1 AND i.job = $2
