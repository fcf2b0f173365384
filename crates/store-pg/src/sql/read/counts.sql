-- The folded counts plus the deltas not folded yet.
SELECT pool, state, sum(n)::bigint AS n FROM (
    SELECT pool, state, n FROM offload_counts
    UNION ALL SELECT pool, state, n FROM offload_count_deltas
) x GROUP BY pool, state HAVING sum(n) > 0
