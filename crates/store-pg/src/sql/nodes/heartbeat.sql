-- Node $1's heartbeat: its load ($2 running, $3 capacity, $4 load, $5 pools); its state follows
-- its drain order. Returns the order.
UPDATE offload_nodes SET heartbeat_at = offload_now_ms(), running = $2::bigint, capacity = $3,
    load1_centi = $4, pools = $5,
    state = CASE WHEN drain_at IS NULL THEN 'active' WHEN $2::bigint = 0 THEN 'drained'
                 ELSE 'draining' END
WHERE id = $1
RETURNING drain_at, drain_deadline_ms, drain_then, offload_now_ms() AS now
