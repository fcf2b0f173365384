-- Every limit with its bucket, locked in key order (one limited claim at a time across nodes),
-- and the database's clock.
SELECT kind, name, rate_limit, period_ms, max_running, tokens, refilled_at,
    offload_now_ms() AS now
FROM offload_queue_limits ORDER BY kind, name FOR UPDATE
