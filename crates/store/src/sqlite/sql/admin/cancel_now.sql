UPDATE jobs SET state = 'cancelled', updated_at = ?2 WHERE id = ?1
