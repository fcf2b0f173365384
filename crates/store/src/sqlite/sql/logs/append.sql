-- One line of an attempt; skipped when its job is gone or the line is stored already (a
-- batch may run twice).
INSERT OR IGNORE INTO job_logs (job_id, attempt, seq, stream, at, line, shared, marker)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8
WHERE EXISTS (SELECT 1 FROM jobs WHERE id = ?1)
