-- Picks per pool (`offload_claim`, `FOR UPDATE SKIP LOCKED`) for node $1: pools $2, at most $3 each, lease $4 ms.
SELECT id, job, pool, params, attempt, max_attempts, timeout_ms, backoff_ms, created_at, run_at
FROM offload_claim($1, $2, $3, $4)
