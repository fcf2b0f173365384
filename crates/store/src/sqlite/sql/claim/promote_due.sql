-- Makes them `queued` (index `jobs_due`).
UPDATE jobs SET state = 'queued', updated_at = ?1
WHERE state IN ('scheduled', 'failed') AND run_at <= ?1
