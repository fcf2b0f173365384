-- A fresh set of attempts; the last error stays for the record.
UPDATE jobs SET state = 'queued', attempt = 0, run_at = ?2, updated_at = ?2,
    cancel_requested = 0, result = NULL, node = NULL, lease_until = NULL
WHERE id = ?1
