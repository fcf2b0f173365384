-- A batch of lines as arrays, one statement; a line whose job is gone, or that is stored
-- already, is skipped.
INSERT INTO offload_job_logs (job_id, attempt, seq, stream, at, line, shared, marker)
SELECT t.job_id, t.attempt, t.seq, t.stream, t.at, t.line, t.shared, t.marker
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::text[],
    $7::boolean[], $8::boolean[]) AS t(job_id, attempt, seq, stream, at, line, shared, marker)
WHERE EXISTS (SELECT 1 FROM offload_jobs j WHERE j.id = t.job_id)
ON CONFLICT DO NOTHING
