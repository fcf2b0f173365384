UPDATE offload_jobs SET lease_until = offload_now_ms() + $3
WHERE id = ANY($1) AND state = 'running' AND node = $2 RETURNING id
