UPDATE jobs SET progress = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'running'
