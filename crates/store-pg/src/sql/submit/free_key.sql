-- The key's job is gone: the key `$1` of job name `$3` is free, it names job `$2` now.
UPDATE offload_idempotency SET job_id = $2, created_at = offload_now_ms()
WHERE key = $1 AND job = $3
