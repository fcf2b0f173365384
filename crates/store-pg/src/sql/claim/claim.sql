-- Picks per pool (`offload_claim`, `FOR UPDATE SKIP LOCKED`) for node $1: pools $2, at most $3 each, lease $4 ms.
-- A job's `backoff` is read beside the function (it never changes once inserted), in its order.
SELECT c.id, c.job, c.pool, c.params, c.attempt, c.max_attempts, c.timeout_ms, c.backoff_ms,
    (SELECT j.backoff FROM offload_jobs j WHERE j.id = c.id) AS backoff, c.created_at, c.run_at
FROM offload_claim($1, $2, $3, $4) WITH ORDINALITY AS c
ORDER BY c.ordinality
