-- Whether a job still matches (after a bulk call: more than its limit matched); a retry's
-- matches have fewer than $6 attempts.
SELECT EXISTS (
    SELECT 1 FROM offload_jobs
    WHERE state = ANY($1::text[])
        AND ($2::text IS NULL OR job = $2) AND ($3::text IS NULL OR pool = $3)
        AND ($4::bigint IS NULL OR created_at >= $4) AND ($5::bigint IS NULL OR created_at < $5)
        AND ($6::bigint IS NULL OR attempt < $6)
) AS more
