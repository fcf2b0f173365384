-- A schedule created again under this name starts afresh (no "missed" tick from the old one).
DELETE FROM cron_ticks WHERE schedule = ?1
