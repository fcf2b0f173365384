-- The next queued jobs of pool $1 in claim order, at most $3, none while the pool is paused,
-- skipping paused job names and the names $2 (closed by their limit); locked, skipping rows
-- another node holds.
SELECT q.id, q.job FROM offload_jobs q
WHERE q.state = 'queued' AND q.pool = $1
  AND NOT EXISTS (SELECT 1 FROM offload_queue_pauses z WHERE z.kind = 'pool' AND z.name = $1)
  AND NOT EXISTS (SELECT 1 FROM offload_queue_pauses z WHERE z.kind = 'job' AND z.name = q.job)
  AND NOT (q.job = ANY($2::text[]))
ORDER BY q.priority DESC, q.run_at, q.id
LIMIT $3
FOR UPDATE SKIP LOCKED
