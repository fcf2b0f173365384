-- Adds a batch's delta to the jobs of pool ?1 in state ?2 (see `counts.rs`).
INSERT INTO job_counts (pool, state, n) VALUES (?1, ?2, ?3)
ON CONFLICT (pool, state) DO UPDATE SET n = n + excluded.n
