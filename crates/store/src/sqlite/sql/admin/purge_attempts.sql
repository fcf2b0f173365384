DELETE FROM attempts WHERE job_id IN (
    SELECT id FROM jobs WHERE state IN ('succeeded', 'dead', 'cancelled') AND CASE WHEN state = 'succeeded' AND keep_result_ms IS NOT NULL
        THEN updated_at + keep_result_ms <= ?2 ELSE updated_at < ?1 END)
