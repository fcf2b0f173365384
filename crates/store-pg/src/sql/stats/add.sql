-- Adds counts (arrays, one entry per row, keys unique and sorted so that concurrent adds of
-- several nodes lock rows in one order) to the stored rows.
INSERT INTO offload_stats (minute, pool, job, metric, bucket, n)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::smallint[],
                     $6::bigint[])
ON CONFLICT (minute, pool, job, metric, bucket) DO UPDATE SET n = offload_stats.n + excluded.n
