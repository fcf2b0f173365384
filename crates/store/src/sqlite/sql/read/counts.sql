SELECT pool, state, n FROM job_counts WHERE n > 0
