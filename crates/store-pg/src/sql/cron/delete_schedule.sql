-- Deletes a schedule, its last tick and its counters: a schedule created again under this name
-- starts afresh (no "missed" tick from the old one, fresh counters, not paused).
WITH gone AS (DELETE FROM offload_schedules WHERE name = $1 RETURNING name),
ticks AS (DELETE FROM offload_cron_ticks WHERE schedule IN (SELECT name FROM gone)),
state AS (DELETE FROM offload_cron_state WHERE schedule IN (SELECT name FROM gone))
SELECT count(*) AS n FROM gone
