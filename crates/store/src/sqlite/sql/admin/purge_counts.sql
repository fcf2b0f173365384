-- Terminal jobs last updated before ?1, per pool and state (for the counts).
SELECT pool, state, count(*) AS n FROM jobs
WHERE state IN ('succeeded', 'dead', 'cancelled') AND updated_at < ?1
GROUP BY pool, state
