-- Registers node ?1 as active at ?6 (a start clears its drain order).
INSERT INTO nodes (id, host, version, pools, started_at, heartbeat_at, running, capacity,
                   load1_centi, state, drain_at, drain_deadline_ms, drain_then)
VALUES (?1, ?2, ?3, ?4, ?6, ?6, 0, ?5, NULL, 'active', NULL, NULL, NULL)
ON CONFLICT (id) DO UPDATE SET host = excluded.host, version = excluded.version,
    pools = excluded.pools, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at, running = 0, capacity = excluded.capacity,
    load1_centi = NULL, state = 'active', drain_at = NULL, drain_deadline_ms = NULL,
    drain_then = NULL
