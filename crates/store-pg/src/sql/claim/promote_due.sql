-- Makes due `scheduled`/`failed` jobs `queued` (index `offload_jobs_due`), skipping rows
-- another node is promoting; returns the pools that got jobs.
WITH due AS (
    SELECT id FROM offload_jobs
    WHERE state IN ('scheduled', 'failed') AND run_at <= offload_now_ms()
    ORDER BY run_at LIMIT 1000
    FOR UPDATE SKIP LOCKED
), promoted AS (
    UPDATE offload_jobs j SET state = 'queued', updated_at = offload_now_ms()
    FROM due WHERE j.id = due.id
    RETURNING j.pool
)
SELECT DISTINCT pool FROM promoted
