-- Marks job ?1 as having dependents (a job that ends runs its release only then); returns its
-- state, no row for an unknown job.
UPDATE jobs SET has_dependents = 1 WHERE id = ?1 RETURNING state
