-- Node ?1's heartbeat at ?6: its load (?2 running, ?3 capacity, ?4 load, ?5 pools); its state
-- follows its drain order. Returns the order. A stopped row is left as it is: a beat still in
-- flight when the node stopped must not bring it back (only a start does).
UPDATE nodes SET
    heartbeat_at = CASE WHEN state = 'stopped' THEN heartbeat_at ELSE ?6 END,
    running = CASE WHEN state = 'stopped' THEN running ELSE ?2 END,
    capacity = CASE WHEN state = 'stopped' THEN capacity ELSE ?3 END,
    load1_centi = CASE WHEN state = 'stopped' THEN load1_centi ELSE ?4 END,
    pools = CASE WHEN state = 'stopped' THEN pools ELSE ?5 END,
    state = CASE WHEN state = 'stopped' THEN 'stopped' WHEN drain_at IS NULL THEN 'active'
                 WHEN ?2 = 0 THEN 'drained' ELSE 'draining' END
WHERE id = ?1
RETURNING drain_at, drain_deadline_ms, drain_then, ?6 AS now
