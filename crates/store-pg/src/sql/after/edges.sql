-- Job $2 waits for the jobs $1 (found by each when it ends: `offload_release_dependents`).
INSERT INTO offload_job_deps (dep_id, job_id) SELECT d, $2 FROM unnest($1::uuid[]) AS d
ON CONFLICT DO NOTHING
