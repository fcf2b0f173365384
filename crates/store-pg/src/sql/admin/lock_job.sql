-- A job, locked until the transaction ends (cancel and retry decide from its state).
SELECT state, node, job, pool, attempt FROM offload_jobs WHERE id = $1 FOR UPDATE
