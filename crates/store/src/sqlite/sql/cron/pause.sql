-- Pauses a schedule that is not paused (one already paused keeps its time and reason).
INSERT INTO cron_state (schedule, paused_at, paused_reason) VALUES (?1, ?2, ?3)
ON CONFLICT (schedule) DO UPDATE SET paused_at = excluded.paused_at,
    paused_reason = excluded.paused_reason
WHERE cron_state.paused_at IS NULL
