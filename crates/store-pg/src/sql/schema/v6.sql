-- Schema version 6 of the PostgreSQL engine: rate and concurrency limits (issue 15).
--
-- - `offload_queue_limits`: one row per limited queue, a pool (`kind = 'pool'`) or every job of
--   a name (`kind = 'job'`): at most `rate_limit` starts per `period_ms` (NULL: no rate) and at
--   most `max_running` running (NULL: no such limit). `tokens` is the token bucket in
--   millionths of a token as of `refilled_at` (`offload_store::rules::throttle`).
-- - `offload_claim` claims nothing while a limit exists: the engine then claims in a
--   transaction that locks every limit row (`FOR UPDATE`, in key order), so the nodes take from
--   one bucket and count the same running jobs one at a time (`src/ops/claim.rs`).

CREATE TABLE offload_queue_limits (
    kind        text   NOT NULL CHECK (kind IN ('pool', 'job')),
    name        text   NOT NULL,
    rate_limit  bigint,
    period_ms   bigint,
    max_running bigint,
    tokens      bigint NOT NULL,
    refilled_at bigint NOT NULL,
    PRIMARY KEY (kind, name)
);

CREATE OR REPLACE FUNCTION offload_claim(p_node text, p_pools text[], p_ns bigint[],
                                         p_lease_ms bigint)
RETURNS TABLE (id uuid, job text, pool text, params json, attempt bigint, max_attempts bigint,
               timeout_ms bigint, backoff_ms bigint, created_at bigint, run_at bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    i integer;
    t bigint := offload_now_ms();
BEGIN
    -- Limits exist: the engine's limited claim takes over (its caller asked in the same pipeline).
    IF EXISTS (SELECT 1 FROM offload_queue_limits) THEN
        RETURN;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_pools, 1), 0) LOOP
        CONTINUE WHEN p_ns[i] <= 0;
        CONTINUE WHEN EXISTS (SELECT 1 FROM offload_queue_pauses z
                              WHERE z.kind = 'pool' AND z.name = p_pools[i]);
        RETURN QUERY
        WITH picked AS (
            SELECT q.id FROM offload_jobs q
            WHERE q.state = 'queued' AND q.pool = p_pools[i]
              AND NOT EXISTS (SELECT 1 FROM offload_queue_pauses z
                              WHERE z.kind = 'job' AND z.name = q.job)
            ORDER BY q.priority DESC, q.run_at, q.id
            LIMIT p_ns[i]
            FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE offload_jobs j
            SET state = 'running', attempt = j.attempt + 1, node = p_node,
                lease_until = t + p_lease_ms, updated_at = t
            FROM picked WHERE j.id = picked.id
            RETURNING j.id, j.job, j.pool, j.params, j.attempt, j.max_attempts, j.timeout_ms,
                      j.backoff_ms, j.created_at, j.run_at, j.priority
        ), started AS (
            INSERT INTO offload_attempts (job_id, attempt, node, started_at)
            SELECT c.id, c.attempt, p_node, t FROM claimed c
        )
        SELECT c.id, c.job, c.pool, c.params, c.attempt, c.max_attempts, c.timeout_ms,
               c.backoff_ms, c.created_at, c.run_at
        FROM claimed c ORDER BY c.priority DESC, c.run_at, c.id;
    END LOOP;
END $$;

-- `unique = "while-active"` (issue 15):
-- - `offload_jobs.unique_key`: a unique job's key (`key:<idempotency key>` or
--   `params:<sha-256 of its canonical params>`, `offload_store::rules::submit::unique_key`).
-- - `offload_jobs_unique_active`: at most one unfinished job per (name, unique key). Submits of
--   one unique key also take an advisory lock on it, so concurrent ones on several nodes
--   serialize and the later finds the first job.
ALTER TABLE offload_jobs ADD COLUMN unique_key text;
CREATE UNIQUE INDEX offload_jobs_unique_active ON offload_jobs (job, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'queued', 'running', 'failed');

-- Idempotency keys scoped by job name (issue 15): the same key with two job names names two
-- jobs. `offload_idempotency` is keyed by (job, key); the keys kept from before name their
-- job's name (a key whose job is gone is free anyway, and dropped).
ALTER TABLE offload_idempotency ADD COLUMN job text;
UPDATE offload_idempotency i SET job = j.job FROM offload_jobs j WHERE j.id = i.job_id;
DELETE FROM offload_idempotency WHERE job IS NULL;
ALTER TABLE offload_idempotency ALTER COLUMN job SET NOT NULL;
ALTER TABLE offload_idempotency DROP CONSTRAINT offload_idempotency_pkey;
ALTER TABLE offload_idempotency ADD PRIMARY KEY (job, key);
