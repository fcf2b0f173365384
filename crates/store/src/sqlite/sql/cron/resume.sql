-- Resuming starts the failure count afresh (else the next check pauses it again).
UPDATE cron_state SET paused_at = NULL, paused_reason = NULL, consecutive_failures = 0
WHERE schedule = ?1
