SELECT attempt, node, pid, started_at, ended_at, outcome, error FROM attempts
WHERE job_id = ?1 ORDER BY seq
