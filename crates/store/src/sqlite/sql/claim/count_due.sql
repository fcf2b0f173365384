-- Due `scheduled`/`failed` jobs per pool and state (index `jobs_due`).
SELECT pool, state, count(*) AS n FROM jobs
WHERE state IN ('scheduled', 'failed') AND run_at <= ?1
GROUP BY pool, state
