-- Schema version 1 of the PostgreSQL engine: the tables of the SQLite engine's v1, in PostgreSQL
-- types, plus what several nodes need. Released: never edit, only follow with v2.
--
-- - `offload_now_ms()`: the database's clock in milliseconds. Every lease and due time is
--   compared with it, so the nodes' clocks do not need to agree.
-- - `offload_jobs`: one row per job; `params`, `progress`, `result`, `error` are `json` (the
--   text as written, so values round-trip exactly; query them with `->`/`->>`).
-- - Partial indexes: `jobs_claim` holds only `queued` jobs in claim order, `jobs_due` the jobs
--   waiting for their `run_at`, `jobs_running` the leases; `jobs_cron_tick` makes a cron tick
--   fire once cluster-wide.
-- - `offload_attempts`: one row per attempt; `seq` orders them.
-- - `offload_idempotency`: the latest job per idempotency key (its primary key serializes
--   concurrent submits of one key across nodes).
-- - `offload_count_deltas` / `offload_counts`: jobs per (pool, state). Statement triggers
--   *append* deltas (no hot row that every claim would lock); `offload_compact_counts()` folds
--   them into `offload_counts` now and then.
CREATE FUNCTION offload_now_ms() RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT (extract(epoch FROM now()) * 1000)::bigint $$;

CREATE TABLE offload_jobs (
    id               uuid    NOT NULL PRIMARY KEY,
    job              text    NOT NULL,
    pool             text    NOT NULL,
    params           json    NOT NULL,
    state            text    NOT NULL CHECK (state IN ('scheduled', 'queued', 'running',
                             'succeeded', 'failed', 'dead', 'cancelled')),
    priority         integer NOT NULL,
    run_at           bigint  NOT NULL,
    created_at       bigint  NOT NULL,
    updated_at       bigint  NOT NULL,
    attempt          bigint  NOT NULL DEFAULT 0,
    max_attempts     bigint  NOT NULL,
    timeout_ms       bigint,
    backoff_ms       bigint  NOT NULL,
    idempotency_key  text,
    cron_schedule    text,
    cron_tick        bigint,
    progress         json,
    result           json,
    error            json,
    cancel_requested boolean NOT NULL DEFAULT false,
    node             text,
    lease_until      bigint
);
CREATE INDEX offload_jobs_claim ON offload_jobs (pool, priority DESC, run_at, id)
    WHERE state = 'queued';
CREATE INDEX offload_jobs_due ON offload_jobs (run_at) WHERE state IN ('scheduled', 'failed');
CREATE INDEX offload_jobs_running ON offload_jobs (lease_until) WHERE state = 'running';
CREATE INDEX offload_jobs_state ON offload_jobs (state, id);
CREATE INDEX offload_jobs_job ON offload_jobs (job, id);
CREATE INDEX offload_jobs_finished ON offload_jobs (updated_at)
    WHERE state IN ('succeeded', 'dead', 'cancelled');
CREATE UNIQUE INDEX offload_jobs_cron_tick ON offload_jobs (cron_schedule, cron_tick)
    WHERE cron_schedule IS NOT NULL;

CREATE TABLE offload_attempts (
    seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id     uuid   NOT NULL,
    attempt    bigint NOT NULL,
    node       text,
    pid        bigint,
    started_at bigint NOT NULL,
    ended_at   bigint,
    outcome    text,
    error      json
);
CREATE INDEX offload_attempts_job ON offload_attempts (job_id, attempt);

CREATE TABLE offload_idempotency (
    key        text   NOT NULL PRIMARY KEY,
    job_id     uuid   NOT NULL,
    created_at bigint NOT NULL
);

CREATE TABLE offload_schedules (
    name       text   NOT NULL PRIMARY KEY,
    cron       text   NOT NULL,
    job        text   NOT NULL,
    params     json   NOT NULL,
    missed     text   NOT NULL,
    created_at bigint NOT NULL
);

CREATE TABLE offload_cron_ticks (
    schedule  text   NOT NULL PRIMARY KEY,
    last_tick bigint NOT NULL,
    job_id    uuid   NOT NULL
);

CREATE TABLE offload_counts (
    pool  text   NOT NULL,
    state text   NOT NULL,
    n     bigint NOT NULL,
    PRIMARY KEY (pool, state)
);
CREATE TABLE offload_count_deltas (
    pool  text   NOT NULL,
    state text   NOT NULL,
    n     bigint NOT NULL
);

CREATE FUNCTION offload_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO offload_count_deltas (pool, state, n)
        SELECT pool, state, count(*) FROM new_rows GROUP BY pool, state;
    RETURN NULL;
END $$;
CREATE FUNCTION offload_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO offload_count_deltas (pool, state, n)
        SELECT pool, state, sum(n) FROM (
            SELECT n.pool, n.state, 1 AS n FROM new_rows n JOIN old_rows o USING (id)
                WHERE o.state <> n.state OR o.pool <> n.pool
            UNION ALL
            SELECT o.pool, o.state, -1 AS n FROM new_rows n JOIN old_rows o USING (id)
                WHERE o.state <> n.state OR o.pool <> n.pool
        ) d GROUP BY pool, state HAVING sum(n) <> 0;
    RETURN NULL;
END $$;
CREATE FUNCTION offload_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO offload_count_deltas (pool, state, n)
        SELECT pool, state, -count(*) FROM old_rows GROUP BY pool, state;
    RETURN NULL;
END $$;
CREATE TRIGGER offload_jobs_count_insert AFTER INSERT ON offload_jobs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION offload_count_insert();
CREATE TRIGGER offload_jobs_count_update AFTER UPDATE ON offload_jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION offload_count_update();
CREATE TRIGGER offload_jobs_count_delete AFTER DELETE ON offload_jobs
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION offload_count_delete();

-- Folds the deltas into offload_counts; one caller at a time, the others return at once.
CREATE FUNCTION offload_compact_counts() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(7306086887142257011) THEN
        RETURN;
    END IF;
    WITH moved AS (DELETE FROM offload_count_deltas RETURNING pool, state, n)
    INSERT INTO offload_counts (pool, state, n)
        SELECT pool, state, sum(n) FROM moved GROUP BY pool, state
        ON CONFLICT (pool, state) DO UPDATE SET n = offload_counts.n + excluded.n;
    DELETE FROM offload_counts WHERE n = 0;
END $$;

-- Claims up to ns[i] queued jobs of pools[i] for `node`, skipping rows other claimers hold.
CREATE FUNCTION offload_claim(p_node text, p_pools text[], p_ns bigint[], p_lease_ms bigint)
RETURNS TABLE (id uuid, job text, pool text, params json, attempt bigint, max_attempts bigint,
               timeout_ms bigint, backoff_ms bigint, created_at bigint, run_at bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    i integer;
    t bigint := offload_now_ms();
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_pools, 1), 0) LOOP
        CONTINUE WHEN p_ns[i] <= 0;
        RETURN QUERY
        WITH picked AS (
            SELECT q.id FROM offload_jobs q
            WHERE q.state = 'queued' AND q.pool = p_pools[i]
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

CREATE TABLE offload_schema (
    version    integer     NOT NULL PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
