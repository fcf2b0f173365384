-- Pauses are counted and added one transaction at a time (the bound holds across nodes).
LOCK TABLE offload_queue_pauses IN SHARE ROW EXCLUSIVE MODE
