-- Schema version 8 of the SQLite engine: history (issue 14, `offload_store::stats`).
--
-- - `stats`: per-minute counts per pool and job name. `metric` is `submitted`, `succeeded`,
--   `failed`, `dead`, `cancelled` (bucket 0) or a histogram of `run_ms` / `wait_ms` (one row
--   per non-empty log-scale bucket). Nodes add to a row (`n = n + excluded.n`); percentiles
--   are computed from the buckets at read time. The lease keeper purges old minutes.

CREATE TABLE stats (
    minute INTEGER NOT NULL,
    pool   TEXT    NOT NULL,
    job    TEXT    NOT NULL,
    metric TEXT    NOT NULL,
    bucket INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (minute, pool, job, metric, bucket)
) WITHOUT ROWID;
