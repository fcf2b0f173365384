UPDATE offload_jobs SET state = 'cancelled', updated_at = offload_now_ms() WHERE id = $1
