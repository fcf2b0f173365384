-- Schema version 9 of the SQLite engine: job dependencies (issue 15, `offload_store::after`).
--
-- - `jobs.after_ids`: the ids a job runs after (a JSON array, NULL: none), for its view;
--   `after_policy`: `always` or NULL (`succeeded`); `waiting_on`: how many of them are not over
--   yet (the job is `waiting` while more than 0); `has_dependents`: some job was submitted to
--   run after this one (a job without dependents costs nothing more when it ends).
-- - `job_deps`: one row per unfinished edge, keyed by the dependency first: a job that ends
--   finds its dependents by the primary key, never by a scan. An edge goes when its dependency
--   ends (or is deleted); an edge of a dependent deleted before goes then too.
-- - `job_deps_released` (a job with dependents ends) and `job_deps_gone` (one is deleted before
--   it ended): each waiting dependent drops `waiting_on` by one and, at 0, becomes `queued`
--   (or `scheduled` until its `run_at`); unless the dependency ended otherwise than
--   `succeeded` and its policy is not `always`: then it is `cancelled` with a
--   `DependencyFailed` error, which fires the trigger again for its own dependents (the engine
--   turns `recursive_triggers` on). They keep `job_counts` themselves (the writer's deltas
--   know nothing of these rows).
-- - `jobs_unique_active` counts `waiting` jobs as unfinished.
-- - `schedules`: a run's jitter and the wait after failed runs of an API schedule
--   (`jitter_ms`, `failure_backoff_ms`, `failure_backoff_max_ms`; NULL: none). The wait reads
--   the counters of `cron_state`, so it needs no state of its own.

ALTER TABLE schedules ADD COLUMN jitter_ms INTEGER;
ALTER TABLE schedules ADD COLUMN failure_backoff_ms INTEGER;
ALTER TABLE schedules ADD COLUMN failure_backoff_max_ms INTEGER;

ALTER TABLE jobs ADD COLUMN after_ids TEXT;
ALTER TABLE jobs ADD COLUMN after_policy TEXT;
ALTER TABLE jobs ADD COLUMN waiting_on INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN has_dependents INTEGER NOT NULL DEFAULT 0;

CREATE TABLE job_deps (
    dep_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (dep_id, job_id)
) WITHOUT ROWID;

DROP INDEX jobs_unique_active;
CREATE UNIQUE INDEX jobs_unique_active ON jobs (job, unique_key)
    WHERE unique_key IS NOT NULL
        AND state IN ('scheduled', 'queued', 'running', 'failed', 'waiting');

CREATE TRIGGER job_deps_released AFTER UPDATE OF state ON jobs
WHEN NEW.has_dependents AND NEW.state IN ('succeeded', 'dead', 'cancelled')
    AND OLD.state NOT IN ('succeeded', 'dead', 'cancelled')
BEGIN
    INSERT INTO job_counts (pool, state, n)
    SELECT j.pool,
        CASE WHEN NOT (NEW.state = 'succeeded' OR j.after_policy IS 'always') THEN 'cancelled'
             WHEN j.waiting_on > 1 THEN 'waiting'
             WHEN j.run_at <= NEW.updated_at THEN 'queued'
             ELSE 'scheduled' END,
        1
    FROM job_deps d JOIN jobs j ON j.id = d.job_id
    WHERE d.dep_id = NEW.id AND j.state = 'waiting'
    UNION ALL
    SELECT j.pool, 'waiting', -1
    FROM job_deps d JOIN jobs j ON j.id = d.job_id
    WHERE d.dep_id = NEW.id AND j.state = 'waiting'
    ON CONFLICT (pool, state) DO UPDATE SET n = n + excluded.n;
    UPDATE jobs SET
        state = CASE WHEN NOT (NEW.state = 'succeeded' OR after_policy IS 'always') THEN 'cancelled'
                     WHEN waiting_on > 1 THEN 'waiting'
                     WHEN run_at <= NEW.updated_at THEN 'queued'
                     ELSE 'scheduled' END,
        error = CASE WHEN NOT (NEW.state = 'succeeded' OR after_policy IS 'always')
                     THEN json_object('name', 'DependencyFailed', 'message',
                                      'job ' || NEW.id || ' it runs after ended ' || NEW.state)
                     ELSE error END,
        waiting_on = CASE WHEN NOT (NEW.state = 'succeeded' OR after_policy IS 'always') THEN 0
                          ELSE waiting_on - 1 END,
        updated_at = NEW.updated_at
    WHERE state = 'waiting' AND id IN (SELECT job_id FROM job_deps WHERE dep_id = NEW.id);
    DELETE FROM job_deps WHERE dep_id = NEW.id;
END;

CREATE TRIGGER job_deps_gone AFTER DELETE ON jobs
WHEN OLD.has_dependents AND OLD.state NOT IN ('succeeded', 'dead', 'cancelled')
BEGIN
    INSERT INTO job_counts (pool, state, n)
    SELECT j.pool,
        CASE WHEN j.after_policy IS NOT 'always' THEN 'cancelled'
             WHEN j.waiting_on > 1 THEN 'waiting'
             WHEN j.run_at <= CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)
                 THEN 'queued'
             ELSE 'scheduled' END,
        1
    FROM job_deps d JOIN jobs j ON j.id = d.job_id
    WHERE d.dep_id = OLD.id AND j.state = 'waiting'
    UNION ALL
    SELECT j.pool, 'waiting', -1
    FROM job_deps d JOIN jobs j ON j.id = d.job_id
    WHERE d.dep_id = OLD.id AND j.state = 'waiting'
    ON CONFLICT (pool, state) DO UPDATE SET n = n + excluded.n;
    UPDATE jobs SET
        state = CASE WHEN after_policy IS NOT 'always' THEN 'cancelled'
                     WHEN waiting_on > 1 THEN 'waiting'
                     WHEN run_at <= CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)
                         THEN 'queued'
                     ELSE 'scheduled' END,
        error = CASE WHEN after_policy IS NOT 'always'
                     THEN json_object('name', 'DependencyFailed', 'message',
                                      'job ' || OLD.id || ' it runs after was deleted')
                     ELSE error END,
        waiting_on = CASE WHEN after_policy IS NOT 'always' THEN 0 ELSE waiting_on - 1 END,
        updated_at = CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)
    WHERE state = 'waiting' AND id IN (SELECT job_id FROM job_deps WHERE dep_id = OLD.id);
    DELETE FROM job_deps WHERE dep_id = OLD.id;
END;
