-- The counts of the minutes in [$1, $2), summed per point of $3 ms (from $1), metric and
-- bucket, for pool $4 and job $5 when not NULL; at most $6 rows.
SELECT $1 + ((minute - $1) / $3) * $3 AS t, metric, bucket::bigint AS bucket,
       sum(n)::bigint AS n
FROM offload_stats
WHERE minute >= $1 AND minute < $2
  AND ($4::text IS NULL OR pool = $4)
  AND ($5::text IS NULL OR job = $5)
GROUP BY 1, metric, bucket
ORDER BY 1, metric, bucket
LIMIT $6
