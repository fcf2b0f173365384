-- Every node's row, by id.
SELECT id, host, version, pools, started_at, heartbeat_at, running, capacity, load1_centi,
       state, drain_at, drain_deadline_ms, drain_then, offload_now_ms() AS now
FROM offload_nodes ORDER BY id
