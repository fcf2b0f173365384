-- Adds ?6 to the count of (?1 minute, ?2 pool, ?3 job, ?4 metric, ?5 bucket).
INSERT INTO stats (minute, pool, job, metric, bucket, n) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
ON CONFLICT (minute, pool, job, metric, bucket) DO UPDATE SET n = n + excluded.n
