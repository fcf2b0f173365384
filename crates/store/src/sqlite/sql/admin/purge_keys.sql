-- The keys that still name a purged job are free again.
DELETE FROM idempotency
WHERE key IN (SELECT idempotency_key FROM jobs
              WHERE state IN ('succeeded', 'dead', 'cancelled') AND CASE WHEN state = 'succeeded' AND keep_result_ms IS NOT NULL
        THEN updated_at + keep_result_ms <= ?2 ELSE updated_at < ?1 END
                  AND idempotency_key IS NOT NULL)
    AND job_id IN (SELECT id FROM jobs
                   WHERE state IN ('succeeded', 'dead', 'cancelled') AND CASE WHEN state = 'succeeded' AND keep_result_ms IS NOT NULL
        THEN updated_at + keep_result_ms <= ?2 ELSE updated_at < ?1 END)
