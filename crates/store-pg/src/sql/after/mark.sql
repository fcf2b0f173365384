-- Marks job $1 as having dependents and returns its state (no row: unknown). The row lock
-- orders this submit with the job's end on any node (`offload_jobs_release`).
UPDATE offload_jobs SET has_dependents = true WHERE id = $1 RETURNING state
