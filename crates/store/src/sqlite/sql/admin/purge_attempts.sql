DELETE FROM attempts WHERE job_id IN (
    SELECT id FROM jobs WHERE state IN ('succeeded', 'dead', 'cancelled') AND updated_at < ?1)
