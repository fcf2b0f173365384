-- Whether any limit exists (then `offload_claim` claims nothing and the limited claim runs).
SELECT EXISTS (SELECT 1 FROM offload_queue_limits) AS limited
