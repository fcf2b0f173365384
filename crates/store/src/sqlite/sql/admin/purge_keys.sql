-- The keys that still name a purged job are free again.
DELETE FROM idempotency
WHERE key IN (SELECT idempotency_key FROM jobs
              WHERE state IN ('succeeded', 'dead', 'cancelled') AND updated_at < ?1
                  AND idempotency_key IS NOT NULL)
    AND job_id IN (SELECT id FROM jobs
                   WHERE state IN ('succeeded', 'dead', 'cancelled') AND updated_at < ?1)
