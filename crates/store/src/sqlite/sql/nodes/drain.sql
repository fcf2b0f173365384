-- Gives node ?1 a drain order at ?2 (?3 deadline, ?4 then; all NULL: takes it back). A stopped
-- node stays stopped; a drained node stays drained until its heartbeat says otherwise.
UPDATE nodes SET drain_at = ?2, drain_deadline_ms = ?3, drain_then = ?4,
    state = CASE WHEN state = 'stopped' THEN 'stopped'
                 WHEN ?2 IS NULL THEN 'active'
                 WHEN state = 'drained' THEN 'drained'
                 ELSE 'draining' END
WHERE id = ?1
RETURNING id, host, version, pools, started_at, heartbeat_at, running, capacity, load1_centi,
          state, drain_at, drain_deadline_ms, drain_then, ?5 AS now
