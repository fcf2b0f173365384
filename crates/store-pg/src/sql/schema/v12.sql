-- Schema version 12 of the PostgreSQL engine: a released dependent is `queued` when its
-- `run_at` has passed by the clock at its release.
--
-- `offload_now_ms()` is the start of the transaction (`now()`). A job submitted after its
-- dependencies (`after`) while one of them was being completed on another connection got as
-- `run_at` the start of its own transaction, later than the start of the completion's; the
-- completion then released it as `scheduled` (due in a few milliseconds), and it waited for the
-- dispatcher's next promotion of due jobs (up to 100 ms) instead of being `queued` at once.
-- Found by `tests/cluster.rs`, `dependencies_completed_on_two_nodes_at_once_release_their_dependents`
-- (failed once in this session's CI runs). Only the due test changes: `updated_at` stays the
-- transaction's time.

CREATE OR REPLACE FUNCTION offload_release_dependents(dep uuid, how text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t bigint := offload_now_ms();
    -- A dependent is due when its `run_at` has passed on the clock now, not at the start of
    -- this transaction: one submitted meanwhile (its `run_at` is its own transaction's start)
    -- is due as well.
    due bigint := greatest(t, (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
    level uuid[] := ARRAY[dep];
    ended text := how;
BEGIN
    WHILE level IS NOT NULL AND cardinality(level) > 0 LOOP
        WITH edges AS (
            DELETE FROM offload_job_deps WHERE dep_id = ANY(level) RETURNING dep_id, job_id
        ), per_job AS (
            SELECT job_id, count(*) AS n, min(dep_id::text) AS dep FROM edges GROUP BY job_id
        ), changed AS (
            UPDATE offload_jobs j SET
                state = CASE WHEN NOT (ended = 'succeeded'
                                       OR j.after_policy IS NOT DISTINCT FROM 'always')
                             THEN 'cancelled'
                             WHEN j.waiting_on > p.n THEN 'waiting'
                             WHEN j.run_at <= due THEN 'queued'
                             ELSE 'scheduled' END,
                error = CASE WHEN NOT (ended = 'succeeded'
                                       OR j.after_policy IS NOT DISTINCT FROM 'always')
                             THEN json_build_object('name', 'DependencyFailed', 'message',
                                 'job ' || p.dep || ' it runs after '
                                 || CASE WHEN ended = 'deleted' THEN 'was deleted'
                                         ELSE 'ended ' || ended END)
                             ELSE j.error END,
                waiting_on = CASE WHEN NOT (ended = 'succeeded'
                                            OR j.after_policy IS NOT DISTINCT FROM 'always')
                                  THEN 0 ELSE greatest(j.waiting_on - p.n, 0) END,
                has_dependents = CASE WHEN NOT (ended = 'succeeded'
                                                OR j.after_policy IS NOT DISTINCT FROM 'always')
                                      THEN false ELSE j.has_dependents END,
                updated_at = t
            FROM per_job p WHERE j.id = p.job_id AND j.state = 'waiting'
            RETURNING j.id, j.state
        )
        -- `o` is read before this statement's changes: whether the job had dependents.
        SELECT array_agg(c.id) INTO level
        FROM changed c JOIN offload_jobs o ON o.id = c.id
        WHERE c.state = 'cancelled' AND o.has_dependents;
        ended := 'cancelled';
    END LOOP;
END $$;
