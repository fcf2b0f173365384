UPDATE jobs SET lease_until = ?3 WHERE id = ?1 AND state = 'running' AND node = ?2
