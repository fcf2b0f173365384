-- Adds or changes the limit of queue (?1, ?2); its bucket (?6 tokens at ?7) replaces the stored
-- one only when the rate changed.
INSERT INTO queue_limits (kind, name, rate_limit, period_ms, max_running, tokens, refilled_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
ON CONFLICT (kind, name) DO UPDATE SET
    rate_limit = excluded.rate_limit, period_ms = excluded.period_ms,
    max_running = excluded.max_running,
    tokens = CASE WHEN rate_limit IS excluded.rate_limit AND period_ms IS excluded.period_ms
                  THEN tokens ELSE excluded.tokens END,
    refilled_at = CASE WHEN rate_limit IS excluded.rate_limit
                        AND period_ms IS excluded.period_ms
                       THEN refilled_at ELSE excluded.refilled_at END
