-- Job ?2 waits for job ?1 (found by ?1 when it ends: `job_deps_released`).
INSERT INTO job_deps (dep_id, job_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING
