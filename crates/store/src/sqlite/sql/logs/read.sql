-- A job's lines after (?3, ?4), of attempt ?2 (or all when -1), in order.
SELECT job_id, attempt, seq, stream, at, line, shared, marker
FROM job_logs
WHERE job_id = ?1
    AND (?2 < 0 OR attempt = ?2)
    AND (attempt > ?3 OR (attempt = ?3 AND seq > ?4))
ORDER BY attempt, seq
LIMIT ?5
