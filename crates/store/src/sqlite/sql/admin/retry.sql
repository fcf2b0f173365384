-- A fresh round of attempts, numbered on after the earlier ones (schema v10), cut to the
-- bound of attempts per job (?3); the last error stays for the record.
UPDATE jobs SET state = 'queued', run_at = ?2, updated_at = ?2,
    max_attempts = MIN(attempt + max_attempts - retried_attempts, ?3), retried_attempts = attempt,
    cancel_requested = 0, result = NULL, node = NULL, lease_until = NULL
WHERE id = ?1
