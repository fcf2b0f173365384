-- Node $1 exited cleanly.
UPDATE offload_nodes SET state = 'stopped', running = 0, heartbeat_at = offload_now_ms()
WHERE id = $1
