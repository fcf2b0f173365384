-- The next queued jobs of pool ?1 in claim order (index `jobs_claim`), at most ?3, none while
-- the pool is paused, skipping paused job names and the names in the JSON array ?2 (closed by
-- their limit).
SELECT id, job FROM jobs
WHERE pool = ?1 AND state = 'queued'
  AND NOT EXISTS (SELECT 1 FROM queue_pauses WHERE kind = 'pool' AND name = ?1)
  AND job NOT IN (SELECT name FROM queue_pauses WHERE kind = 'job')
  AND job NOT IN (SELECT value FROM json_each(?2))
ORDER BY priority DESC, run_at, id LIMIT ?3
