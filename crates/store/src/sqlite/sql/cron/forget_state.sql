-- A schedule created again under this name starts with fresh counters, not paused.
DELETE FROM cron_state WHERE schedule = ?1
