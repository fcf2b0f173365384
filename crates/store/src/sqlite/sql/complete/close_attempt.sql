-- Ends the open attempt ?2 of job ?1 (the latest row with that number).
UPDATE attempts SET pid = coalesce(?3, pid), started_at = coalesce(?4, started_at),
    ended_at = ?5, outcome = ?6, error = ?7
WHERE seq = (SELECT max(seq) FROM attempts WHERE job_id = ?1 AND attempt = ?2)
