-- A job's state, locked until the transaction ends (delete decides from it).
SELECT state FROM offload_jobs WHERE id = $1 FOR UPDATE
