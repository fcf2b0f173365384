-- Gives node $1 a drain order now ($2 true; $3 deadline, $4 then) or takes it back ($2 false).
-- A stopped node stays stopped; a drained node stays drained until its heartbeat says otherwise.
UPDATE offload_nodes SET
    drain_at = CASE WHEN $2 THEN offload_now_ms() END,
    drain_deadline_ms = CASE WHEN $2 THEN $3::bigint END,
    drain_then = CASE WHEN $2 THEN $4::text END,
    state = CASE WHEN state = 'stopped' THEN 'stopped'
                 WHEN NOT $2 THEN 'active'
                 WHEN state = 'drained' THEN 'drained'
                 ELSE 'draining' END
WHERE id = $1
RETURNING id, host, version, pools, started_at, heartbeat_at, running, capacity, load1_centi,
          state, drain_at, drain_deadline_ms, drain_then, offload_now_ms() AS now
