-- A fresh set of attempts; the last error stays for the record.
UPDATE offload_jobs SET state = 'queued', attempt = 0, run_at = offload_now_ms(),
    updated_at = offload_now_ms(), cancel_requested = false, result = NULL, node = NULL,
    lease_until = NULL
WHERE id = $1
