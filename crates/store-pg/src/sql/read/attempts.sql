SELECT attempt, node, pid, started_at, ended_at, outcome, error FROM offload_attempts
WHERE job_id = $1 ORDER BY seq
