-- Schema version 11 of the SQLite engine: the cancellation of a chain of dependents no longer
-- nests one trigger per link (issue 15).
--
-- In v9 a dependent cancelled by its dependency fired `job_deps_released` for its own
-- dependents, inside the first trigger: one nesting level per link, so a dead head of a chain
-- longer than SQLite's trigger depth (1,000) failed the completion ("triggers nested too
-- deep"). Now:
-- - `job_cascade`: jobs whose dependents are still to be released, with how and when they
--   ended (a deleted job: the time of the delete, as v9).
-- - `job_deps_released` / `job_deps_gone` put the job that ended (or was deleted) into it and
--   take it out again at once; `job_cascade_released` (on that delete) releases its dependents
--   as v9 did. A dependent it cancels is written with `has_dependents = 0`, so it fires no
--   trigger, and, when it had dependents, goes into `job_cascade` itself.
-- - The writer empties `job_cascade` level by level after every call, inside the call's
--   transaction (`ops::after::release_cascade`): a chain of any length ends in the transaction
--   that ended its head, with a constant trigger depth.

CREATE TABLE job_cascade (
    id TEXT PRIMARY KEY,
    how TEXT NOT NULL,
    at INTEGER NOT NULL
) WITHOUT ROWID;

DROP TRIGGER job_deps_released;
DROP TRIGGER job_deps_gone;

CREATE TRIGGER job_deps_released AFTER UPDATE OF state ON jobs
WHEN NEW.has_dependents AND NEW.state IN ('succeeded', 'dead', 'cancelled')
    AND OLD.state NOT IN ('succeeded', 'dead', 'cancelled')
BEGIN
    INSERT OR REPLACE INTO job_cascade (id, how, at) VALUES (NEW.id, NEW.state, NEW.updated_at);
    DELETE FROM job_cascade WHERE id = NEW.id;
END;

CREATE TRIGGER job_deps_gone AFTER DELETE ON jobs
WHEN OLD.has_dependents AND OLD.state NOT IN ('succeeded', 'dead', 'cancelled')
BEGIN
    INSERT OR REPLACE INTO job_cascade (id, how, at)
    VALUES (OLD.id, 'deleted', CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER));
    DELETE FROM job_cascade WHERE id = OLD.id;
END;

-- `OLD.id` ended `OLD.how` (`succeeded`, `dead`, `cancelled`, `deleted`): each waiting
-- dependent drops `waiting_on` by one and, at 0, becomes `queued` (or `scheduled` until its
-- `run_at`); unless `how` is not `succeeded` and its policy is not `always`: then it is
-- `cancelled` with a `DependencyFailed` error, and its own dependents wait in `job_cascade`.
-- The trigger keeps `job_counts` itself (the writer's deltas know nothing of these rows).
CREATE TRIGGER job_cascade_released AFTER DELETE ON job_cascade
BEGIN
    INSERT INTO job_counts (pool, state, n)
    SELECT j.pool,
        CASE WHEN NOT (OLD.how = 'succeeded' OR j.after_policy IS 'always') THEN 'cancelled'
             WHEN j.waiting_on > 1 THEN 'waiting'
             WHEN j.run_at <= OLD.at THEN 'queued'
             ELSE 'scheduled' END,
        1
    FROM job_deps d JOIN jobs j ON j.id = d.job_id
    WHERE d.dep_id = OLD.id AND j.state = 'waiting'
    UNION ALL
    SELECT j.pool, 'waiting', -1
    FROM job_deps d JOIN jobs j ON j.id = d.job_id
    WHERE d.dep_id = OLD.id AND j.state = 'waiting'
    ON CONFLICT (pool, state) DO UPDATE SET n = n + excluded.n;
    INSERT OR REPLACE INTO job_cascade (id, how, at)
    SELECT j.id, 'cancelled', OLD.at
    FROM job_deps d JOIN jobs j ON j.id = d.job_id
    WHERE d.dep_id = OLD.id AND j.state = 'waiting' AND j.has_dependents
        AND NOT (OLD.how = 'succeeded' OR j.after_policy IS 'always');
    UPDATE jobs SET
        state = CASE WHEN NOT (OLD.how = 'succeeded' OR after_policy IS 'always') THEN 'cancelled'
                     WHEN waiting_on > 1 THEN 'waiting'
                     WHEN run_at <= OLD.at THEN 'queued'
                     ELSE 'scheduled' END,
        error = CASE WHEN NOT (OLD.how = 'succeeded' OR after_policy IS 'always')
                     THEN json_object('name', 'DependencyFailed', 'message',
                                      'job ' || OLD.id || ' it runs after '
                                      || CASE WHEN OLD.how = 'deleted' THEN 'was deleted'
                                              ELSE 'ended ' || OLD.how END)
                     ELSE error END,
        waiting_on = CASE WHEN NOT (OLD.how = 'succeeded' OR after_policy IS 'always') THEN 0
                          ELSE waiting_on - 1 END,
        has_dependents = CASE WHEN NOT (OLD.how = 'succeeded' OR after_policy IS 'always')
                              THEN 0 ELSE has_dependents END,
        updated_at = OLD.at
    WHERE state = 'waiting' AND id IN (SELECT job_id FROM job_deps WHERE dep_id = OLD.id);
    DELETE FROM job_deps WHERE dep_id = OLD.id;
END;
