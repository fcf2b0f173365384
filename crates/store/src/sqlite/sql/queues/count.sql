-- How many queues are paused, and whether queue (?1 kind, ?2 name) is one of them.
SELECT count(*) AS n, coalesce(max(kind = ?1 AND name = ?2), 0) AS present FROM queue_pauses
