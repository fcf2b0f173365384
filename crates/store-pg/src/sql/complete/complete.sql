-- Applies completions (arrays): only those whose job is still `running` with the same attempt
-- and node; ends (or records) their attempt; returns the changed jobs. A hand-back (`uncounted`)
-- re-queues its job with the attempt one lower; a cancel asked while a job ran wins over a retry
-- or a hand-back.
WITH c AS (
    SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::bigint[], $5::bigint[],
                         $6::bigint[], $7::text[], $8::text[], $9::bigint[], $10::json[],
                         $11::json[], $12::boolean[])
        AS c(id, attempt, node, pid, started_at, ended_at, outcome, next_state, next_run_at,
             result, error, uncounted)
), cur AS (
    SELECT c.*, j.cancel_requested FROM c JOIN offload_jobs j ON j.id = c.id
    WHERE j.state = 'running' AND j.attempt = c.attempt AND j.node = c.node
    FOR UPDATE OF j
), ended AS (
    UPDATE offload_jobs j SET
        state = CASE WHEN cur.next_state IN ('failed', 'queued') AND cur.cancel_requested
                     THEN 'cancelled' ELSE cur.next_state END,
        run_at = CASE WHEN cur.next_state = 'failed' AND NOT cur.cancel_requested
                      THEN cur.next_run_at ELSE j.run_at END,
        attempt = CASE WHEN cur.uncounted AND NOT cur.cancel_requested THEN j.attempt - 1
                       ELSE j.attempt END,
        result = cur.result,
        error = CASE WHEN cur.next_state = 'succeeded' THEN NULL
                     ELSE coalesce(cur.error, j.error) END,
        node = NULL, lease_until = NULL, updated_at = offload_now_ms()
    FROM cur WHERE j.id = cur.id
    RETURNING j.id, j.job, j.pool, j.state, j.attempt, j.run_at <= offload_now_ms() AS due,
        j.has_dependents
), closed AS (
    UPDATE offload_attempts a SET pid = coalesce(cur.pid, a.pid), started_at = cur.started_at,
        ended_at = cur.ended_at, outcome = cur.outcome, error = cur.error
    FROM cur
    WHERE a.seq = (SELECT max(s.seq) FROM offload_attempts s
                   WHERE s.job_id = cur.id AND s.attempt = cur.attempt)
    RETURNING a.job_id
), added AS (
    INSERT INTO offload_attempts (job_id, attempt, node, pid, started_at, ended_at, outcome,
                                  error)
    SELECT cur.id, cur.attempt, cur.node, cur.pid, cur.started_at, cur.ended_at, cur.outcome,
           cur.error
    FROM cur WHERE cur.id NOT IN (SELECT job_id FROM closed)
)
-- `woken`: the pools of an ended job's waiting dependents (its trigger may release them), read
-- from the statement's snapshot, before the trigger took the edges: the other nodes are told
-- those pools are due.
SELECT id, job, pool, state, attempt, due,
       CASE WHEN has_dependents AND state IN ('succeeded', 'dead', 'cancelled')
            THEN ARRAY(SELECT DISTINCT d.pool FROM offload_job_deps e
                       JOIN offload_jobs d ON d.id = e.job_id
                       WHERE e.dep_id = ended.id AND d.state = 'waiting')
       END AS woken
FROM ended
