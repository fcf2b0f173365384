-- Every limit with its bucket.
SELECT kind, name, rate_limit, period_ms, max_running, tokens, refilled_at FROM queue_limits
