-- Every node's row at ?1, by id.
SELECT id, host, version, pools, started_at, heartbeat_at, running, capacity, load1_centi,
       state, drain_at, drain_deadline_ms, drain_then, ?1 AS now
FROM nodes ORDER BY id
