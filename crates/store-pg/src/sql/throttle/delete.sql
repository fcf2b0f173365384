-- Removes every limit whose queue is not among ($1 kinds, $2 names).
DELETE FROM offload_queue_limits
WHERE (kind, name) NOT IN (SELECT * FROM unnest($1::text[], $2::text[]))
