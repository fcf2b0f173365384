-- Folds the count deltas (one node at a time).
SELECT offload_compact_counts()
