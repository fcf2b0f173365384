-- Adds or changes the limit of queue ($1, $2); its bucket ($6 tokens, now) replaces the stored
-- one only when the rate changed.
INSERT INTO offload_queue_limits AS l
    (kind, name, rate_limit, period_ms, max_running, tokens, refilled_at)
VALUES ($1, $2, $3, $4, $5, $6, offload_now_ms())
ON CONFLICT (kind, name) DO UPDATE SET
    rate_limit = excluded.rate_limit, period_ms = excluded.period_ms,
    max_running = excluded.max_running,
    tokens = CASE WHEN l.rate_limit IS NOT DISTINCT FROM excluded.rate_limit
                   AND l.period_ms IS NOT DISTINCT FROM excluded.period_ms
                  THEN l.tokens ELSE excluded.tokens END,
    refilled_at = CASE WHEN l.rate_limit IS NOT DISTINCT FROM excluded.rate_limit
                        AND l.period_ms IS NOT DISTINCT FROM excluded.period_ms
                       THEN l.refilled_at ELSE excluded.refilled_at END
