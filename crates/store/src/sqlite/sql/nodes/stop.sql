-- Node ?1 exited cleanly at ?2.
UPDATE nodes SET state = 'stopped', running = 0, heartbeat_at = ?2 WHERE id = ?1
