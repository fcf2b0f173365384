-- Locks every key and cron tick of a batch, in one order, so two batches that share some never
-- wait for each other in a cycle (a deadlock costs a second to detect).
SELECT count(pg_advisory_xact_lock(hashtextextended(k, 7)))
FROM (SELECT k FROM unnest($1::text[]) AS k ORDER BY k) AS sorted
