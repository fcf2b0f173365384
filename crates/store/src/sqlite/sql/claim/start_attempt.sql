INSERT INTO attempts (job_id, attempt, node, started_at) VALUES (?1, ?2, ?3, ?4)
