INSERT INTO offload_cron_state (schedule, paused_at, paused_reason) VALUES ($1, $2, $3)
ON CONFLICT (schedule) DO UPDATE SET paused_at = excluded.paused_at,
    paused_reason = excluded.paused_reason
