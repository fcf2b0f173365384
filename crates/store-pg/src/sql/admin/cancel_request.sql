UPDATE offload_jobs SET cancel_requested = true, updated_at = offload_now_ms() WHERE id = $1
