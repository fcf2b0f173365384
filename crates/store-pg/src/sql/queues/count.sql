-- How many queues are paused, and whether queue ($1 kind, $2 name) is one of them.
SELECT count(*) AS n, coalesce(bool_or(kind = $1 AND name = $2), false) AS present
FROM offload_queue_pauses
