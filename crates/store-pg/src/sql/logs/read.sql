-- A job's lines after ($3, $4), of attempt $2 (or all when -1), in order.
SELECT job_id, attempt, seq, stream, at, line, shared, marker
FROM offload_job_logs
WHERE job_id = $1
    AND ($2::bigint < 0 OR attempt = $2::bigint)
    AND (attempt, seq) > ($3::bigint, $4::bigint)
ORDER BY attempt, seq
LIMIT $5::bigint
