-- Schema version 9 of the PostgreSQL engine: job dependencies (issue 15,
-- `offload_store::after`).
--
-- - `offload_jobs.after_ids`: the ids a job runs after (a JSON array, NULL: none), for its
--   view; `after_policy`: `always` or NULL (`succeeded`); `waiting_on`: how many of them are
--   not over yet (the job is `waiting` while more than 0); `has_dependents`: some job was
--   submitted to run after this one (a job without dependents costs nothing more when it
--   ends). A submit sets the flag by an `UPDATE` of the dependency's row: that row lock orders
--   it with the dependency's end on any node (it ends first and the submit sees it over, or it
--   waits for the submit and its trigger sees the new edge).
-- - `offload_job_deps`: one row per unfinished edge, keyed by the dependency first: a job that
--   ends finds its dependents by the primary key, never by a scan.
-- - `offload_release_dependents`: a job with dependents ends (or is deleted unfinished): its
--   edges go and each waiting dependent drops `waiting_on` by one in one `UPDATE` (two nodes
--   ending two dependencies at once serialize on the dependent's row, and the second sees the
--   first's count), becoming `queued` (or `scheduled` until its `run_at`) at 0; unless the
--   dependency ended otherwise than `succeeded` and its policy is not `always`: then it is
--   `cancelled` with a `DependencyFailed` error, which fires the trigger again for its own
--   dependents. The count triggers see these rows as any update.
-- - `offload_schedules`: a run's jitter and the wait after failed runs of an API schedule
--   (`jitter_ms`, `failure_backoff_ms`, `failure_backoff_max_ms`; NULL: none). The wait reads
--   the counters of `offload_cron_state`, shared by every node, so it needs no state of its
--   own.
-- - `offload_jobs_state_check` allows `waiting`; `offload_jobs_unique_active` counts it as
--   unfinished.

ALTER TABLE offload_schedules ADD COLUMN jitter_ms bigint;
ALTER TABLE offload_schedules ADD COLUMN failure_backoff_ms bigint;
ALTER TABLE offload_schedules ADD COLUMN failure_backoff_max_ms bigint;

ALTER TABLE offload_jobs DROP CONSTRAINT offload_jobs_state_check;
ALTER TABLE offload_jobs ADD CONSTRAINT offload_jobs_state_check CHECK (state IN ('scheduled',
    'queued', 'running', 'succeeded', 'failed', 'dead', 'cancelled', 'waiting'));
ALTER TABLE offload_jobs ADD COLUMN after_ids json;
ALTER TABLE offload_jobs ADD COLUMN after_policy text;
ALTER TABLE offload_jobs ADD COLUMN waiting_on bigint NOT NULL DEFAULT 0;
ALTER TABLE offload_jobs ADD COLUMN has_dependents boolean NOT NULL DEFAULT false;

CREATE TABLE offload_job_deps (
    dep_id uuid NOT NULL,
    job_id uuid NOT NULL,
    PRIMARY KEY (dep_id, job_id)
);

DROP INDEX offload_jobs_unique_active;
CREATE UNIQUE INDEX offload_jobs_unique_active ON offload_jobs (job, unique_key)
    WHERE unique_key IS NOT NULL
        AND state IN ('scheduled', 'queued', 'running', 'failed', 'waiting');

-- The dependents of `dep`, which ended `how` (`succeeded`, `dead`, `cancelled`, `deleted`).
CREATE FUNCTION offload_release_dependents(dep uuid, how text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t bigint := offload_now_ms();
BEGIN
    WITH edges AS (
        DELETE FROM offload_job_deps WHERE dep_id = dep RETURNING job_id
    )
    UPDATE offload_jobs j SET
        state = CASE WHEN NOT (how = 'succeeded' OR j.after_policy IS NOT DISTINCT FROM 'always')
                     THEN 'cancelled'
                     WHEN j.waiting_on > 1 THEN 'waiting'
                     WHEN j.run_at <= t THEN 'queued'
                     ELSE 'scheduled' END,
        error = CASE WHEN NOT (how = 'succeeded' OR j.after_policy IS NOT DISTINCT FROM 'always')
                     THEN json_build_object('name', 'DependencyFailed', 'message',
                         'job ' || dep || ' it runs after '
                         || CASE WHEN how = 'deleted' THEN 'was deleted' ELSE 'ended ' || how END)
                     ELSE j.error END,
        waiting_on = CASE WHEN NOT (how = 'succeeded' OR j.after_policy IS NOT DISTINCT FROM 'always')
                          THEN 0 ELSE j.waiting_on - 1 END,
        updated_at = t
    FROM edges WHERE j.id = edges.job_id AND j.state = 'waiting';
END $$;

CREATE FUNCTION offload_jobs_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM offload_release_dependents(NEW.id, NEW.state);
    RETURN NULL;
END $$;
CREATE FUNCTION offload_jobs_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM offload_release_dependents(OLD.id, 'deleted');
    RETURN NULL;
END $$;
CREATE TRIGGER offload_jobs_release AFTER UPDATE OF state ON offload_jobs
    FOR EACH ROW
    WHEN (NEW.has_dependents AND NEW.state IN ('succeeded', 'dead', 'cancelled')
          AND OLD.state NOT IN ('succeeded', 'dead', 'cancelled'))
    EXECUTE FUNCTION offload_jobs_ended();
CREATE TRIGGER offload_jobs_release_gone AFTER DELETE ON offload_jobs
    FOR EACH ROW
    WHEN (OLD.has_dependents AND OLD.state NOT IN ('succeeded', 'dead', 'cancelled'))
    EXECUTE FUNCTION offload_jobs_gone();
