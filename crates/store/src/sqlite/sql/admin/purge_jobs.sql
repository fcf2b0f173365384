DELETE FROM jobs WHERE state IN ('succeeded', 'dead', 'cancelled') AND updated_at < ?1
