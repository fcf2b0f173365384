-- The state and last heartbeat of node $1 (locked until the registration commits), and now.
SELECT state, heartbeat_at, offload_now_ms() AS now FROM offload_nodes WHERE id = $1 FOR UPDATE
