-- Terminal jobs last updated before ?1 (a succeeded job with its own keep_result_ms: once it has
-- passed, ?2 being now), per pool and state (for the counts).
SELECT pool, state, count(*) AS n FROM jobs
WHERE state IN ('succeeded', 'dead', 'cancelled') AND CASE WHEN state = 'succeeded' AND keep_result_ms IS NOT NULL
        THEN updated_at + keep_result_ms <= ?2 ELSE updated_at < ?1 END
GROUP BY pool, state
