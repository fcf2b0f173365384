-- The unfinished job of name $1 holding unique key $2, if any (index
-- `offload_jobs_unique_active`).
SELECT id, state FROM offload_jobs
WHERE job = $1 AND unique_key = $2 AND state IN ('scheduled', 'queued', 'running', 'failed', 'waiting')
