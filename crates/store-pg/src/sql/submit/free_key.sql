-- The key's job is gone: the key is free, it names job `$2` now.
UPDATE offload_idempotency SET job_id = $2, created_at = offload_now_ms()
WHERE key = $1
