-- Keeps the logs of job ?1's last ?2 attempts only (a retry calls it).
DELETE FROM job_logs
WHERE job_id = ?1 AND attempt <= (SELECT attempt FROM jobs WHERE id = ?1) - ?2
