-- Re-queues running jobs whose lease ended (or of node `$1`), skipping rows another node is
-- recovering; a job whose cancel was asked becomes `cancelled`. Ends their open attempt as
-- `lease_expired` (or records it).
WITH lost AS (
    SELECT id, attempt, node FROM offload_jobs
    WHERE state = 'running' AND (lease_until < offload_now_ms() OR node = $1)
    FOR UPDATE SKIP LOCKED
), requeued AS (
    UPDATE offload_jobs j
    SET state = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'queued' END,
        node = NULL, lease_until = NULL, updated_at = offload_now_ms()
    FROM lost WHERE j.id = lost.id
    RETURNING j.id, j.job, j.pool, j.state, j.attempt
), closed AS (
    UPDATE offload_attempts a SET ended_at = offload_now_ms(), outcome = 'lease_expired',
        error = NULL
    FROM lost
    WHERE a.seq = (SELECT max(s.seq) FROM offload_attempts s
                   WHERE s.job_id = lost.id AND s.attempt = lost.attempt)
    RETURNING a.job_id
), added AS (
    INSERT INTO offload_attempts (job_id, attempt, node, started_at, ended_at, outcome)
    SELECT lost.id, lost.attempt, lost.node, offload_now_ms(), offload_now_ms(), 'lease_expired'
    FROM lost WHERE lost.id NOT IN (SELECT job_id FROM closed)
)
SELECT id, job, pool, state, attempt FROM requeued
