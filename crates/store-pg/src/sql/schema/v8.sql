-- Schema version 8 of the PostgreSQL engine: history (issue 14, `offload_store::stats`).
--
-- - `offload_stats`: per-minute counts per pool and job name. `metric` is `submitted`,
--   `succeeded`, `failed`, `dead`, `cancelled` (bucket 0) or a histogram of `run_ms` /
--   `wait_ms` (one row per non-empty log-scale bucket). Every node adds to the same rows
--   (`n = n + excluded.n`), so the cluster's history merges; percentiles are computed from the
--   buckets at read time. The lease keeper of every node purges old minutes.

CREATE TABLE offload_stats (
    minute bigint   NOT NULL,
    pool   text     NOT NULL,
    job    text     NOT NULL,
    metric text     NOT NULL,
    bucket smallint NOT NULL,
    n      bigint   NOT NULL,
    PRIMARY KEY (minute, pool, job, metric, bucket)
);
