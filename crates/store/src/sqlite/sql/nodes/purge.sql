-- Deletes the rows of nodes whose last heartbeat is before ?1.
DELETE FROM nodes WHERE heartbeat_at < ?1
