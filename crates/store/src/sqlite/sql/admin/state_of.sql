SELECT state, pool FROM jobs WHERE id = ?1
