-- Every limit with its bucket, and the database's clock.
SELECT kind, name, rate_limit, period_ms, max_running, tokens, refilled_at,
    offload_now_ms() AS now
FROM offload_queue_limits ORDER BY kind, name
