-- A lost job back to ?2 (`queued`, or `cancelled` when its cancel was asked).
UPDATE jobs SET state = ?2, node = NULL, lease_until = NULL, updated_at = ?3 WHERE id = ?1
