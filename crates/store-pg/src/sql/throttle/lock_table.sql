-- Limits are replaced one transaction at a time.
LOCK TABLE offload_queue_limits IN SHARE ROW EXCLUSIVE MODE
