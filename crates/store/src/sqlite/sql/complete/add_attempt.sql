-- Records an ended attempt whose row is missing.
INSERT INTO attempts (job_id, attempt, node, pid, started_at, ended_at, outcome, error)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
