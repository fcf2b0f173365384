SELECT state, pool, attempt FROM jobs WHERE id = ?1
