DELETE FROM queue_limits WHERE kind = ?1 AND name = ?2
