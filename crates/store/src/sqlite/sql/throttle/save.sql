-- The bucket of queue (?1, ?2) after a claim.
UPDATE queue_limits SET tokens = ?3, refilled_at = ?4 WHERE kind = ?1 AND name = ?2
