-- The dependencies of the new job $1: its state $2 (`waiting`, `cancelled`, or as inserted),
-- how many it waits on, the ids it named, its policy and, when cancelled, why.
UPDATE offload_jobs SET state = $2, waiting_on = $3, after_ids = $4, after_policy = $5,
    error = coalesce($6, error)
WHERE id = $1
