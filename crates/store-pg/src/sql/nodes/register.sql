-- Takes over node $1's row: active from now (a start clears its drain order).
UPDATE offload_nodes SET host = $2, version = $3, pools = $4, started_at = offload_now_ms(),
    heartbeat_at = offload_now_ms(), running = 0, capacity = $5, load1_centi = NULL,
    state = 'active', drain_at = NULL, drain_deadline_ms = NULL, drain_then = NULL
WHERE id = $1
