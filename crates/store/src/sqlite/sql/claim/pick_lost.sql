-- Running jobs whose lease ended before ?1, or of node ?2 (index `jobs_state`).
SELECT id, attempt, node, pool, cancel_requested FROM jobs
WHERE state = 'running' AND (lease_until < ?1 OR node = ?2)
