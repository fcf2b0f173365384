-- Registers node $1 as active if it has no row yet; returns it when it did.
INSERT INTO offload_nodes (id, host, version, pools, started_at, heartbeat_at, running, capacity,
                           state)
VALUES ($1, $2, $3, $4, offload_now_ms(), offload_now_ms(), 0, $5, 'active')
ON CONFLICT (id) DO NOTHING
RETURNING id
