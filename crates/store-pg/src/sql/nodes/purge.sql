-- Deletes the rows of nodes whose last heartbeat is more than $1 ms old.
DELETE FROM offload_nodes WHERE heartbeat_at < offload_now_ms() - $1
