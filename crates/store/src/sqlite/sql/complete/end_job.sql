-- Ends job ?1 with state ?4: only the current attempt ?2 of the node ?3 holding the lease; a
-- cancel asked while it ran wins over a retry or a hand-back (the job does not run again). A
-- hand-back (?9: the attempt is not counted) re-queues the job with its attempt one lower.
UPDATE jobs SET
    state = CASE WHEN ?4 IN ('failed', 'queued') AND cancel_requested THEN 'cancelled' ELSE ?4 END,
    run_at = CASE WHEN ?4 = 'failed' AND NOT cancel_requested THEN ?5 ELSE run_at END,
    attempt = CASE WHEN ?9 AND NOT cancel_requested THEN attempt - 1 ELSE attempt END,
    result = ?6,
    error = CASE WHEN ?4 = 'succeeded' THEN NULL ELSE coalesce(?7, error) END,
    node = NULL, lease_until = NULL, updated_at = ?8
WHERE id = ?1 AND state = 'running' AND attempt = ?2 AND node = ?3
RETURNING pool, state
