-- The buckets after a claim: queues ($1 kinds, $2 names), tokens $3, refilled at $4.
UPDATE offload_queue_limits l SET tokens = b.tokens, refilled_at = b.refilled_at
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
    AS b (kind, name, tokens, refilled_at)
WHERE l.kind = b.kind AND l.name = b.name
