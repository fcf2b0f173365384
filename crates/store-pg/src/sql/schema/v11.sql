-- Schema version 11 of the PostgreSQL engine: the cancellation of a chain of dependents no
-- longer nests one trigger per link (issue 15).
--
-- In v9 a dependent cancelled by its dependency fired `offload_jobs_release` for its own
-- dependents, inside the first trigger's function: one nesting level per link, so a dead head
-- of a chain a few thousand links long failed the completion ("stack depth limit exceeded").
-- Now `offload_release_dependents` walks the chain itself, one level per loop: a dependent it
-- cancels is written with `has_dependents = false` (so it fires no trigger) and, when it had
-- dependents, becomes the next level. Each level is one `DELETE … UPDATE` by the edges'
-- primary key; a dependent two of whose dependencies end in one level drops `waiting_on` by
-- two. The whole chain ends in the transaction that ended its head.

CREATE OR REPLACE FUNCTION offload_release_dependents(dep uuid, how text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    t bigint := offload_now_ms();
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
                             WHEN j.run_at <= t THEN 'queued'
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
