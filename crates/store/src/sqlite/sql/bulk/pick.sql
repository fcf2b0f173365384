-- Jobs in one of the states ?1 (a JSON array), of job ?2 and pool ?3 when given, submitted in
-- [?4, ?5) when given, with fewer than ?7 attempts when given (a retry's bound): at most ?6,
-- oldest first.
SELECT id, pool, state FROM jobs
WHERE state IN (SELECT value FROM json_each(?1))
    AND (?2 IS NULL OR job = ?2) AND (?3 IS NULL OR pool = ?3)
    AND (?4 IS NULL OR created_at >= ?4) AND (?5 IS NULL OR created_at < ?5)
    AND (?7 IS NULL OR attempt < ?7)
ORDER BY id LIMIT ?6
