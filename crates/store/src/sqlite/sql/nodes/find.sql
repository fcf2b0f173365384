-- The state and last heartbeat of node ?1, if it has a row.
SELECT state, heartbeat_at FROM nodes WHERE id = ?1
