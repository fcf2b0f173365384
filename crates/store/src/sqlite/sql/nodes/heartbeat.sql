-- Node ?1's heartbeat at ?6: its load (?2 running, ?3 capacity, ?4 load, ?5 pools); its state
-- follows its drain order. Returns the order.
UPDATE nodes SET heartbeat_at = ?6, running = ?2, capacity = ?3, load1_centi = ?4, pools = ?5,
    state = CASE WHEN drain_at IS NULL THEN 'active' WHEN ?2 = 0 THEN 'drained'
                 ELSE 'draining' END
WHERE id = ?1
RETURNING drain_at, drain_deadline_ms, drain_then, ?6 AS now
