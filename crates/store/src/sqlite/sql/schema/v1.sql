-- Schema version 1 of the SQLite engine. Released: never edit, only follow with v2.
--
-- - `jobs`: one row per job. `state` holds `JobState::as_str`; JSON columns (`params`,
--   `progress`, `result`, `error`) hold serialized text. `id` is the UUIDv7 in its hyphenated
--   lowercase form, so text order is creation order.
-- - `jobs_claim` is partial: only `queued` jobs are in it, in claim order.
-- - `jobs_due` is partial: only jobs waiting for their `run_at` (`scheduled`, `failed`).
-- - `jobs_cron_tick`: a cron tick creates one job.
-- - `attempts`: one row per attempt; `seq` orders them (a `retry` starts numbering again at 1).
-- - `idempotency`: the latest job per idempotency key.
-- - `cron_ticks`: the last tick per schedule, kept when its jobs are purged.
-- - `job_counts`: jobs per (pool, state), kept by the writer (see `counts.rs`), so `counts`
--   does not scan.

CREATE TABLE jobs (
    id               TEXT    NOT NULL PRIMARY KEY,
    job              TEXT    NOT NULL,
    pool             TEXT    NOT NULL,
    params           TEXT    NOT NULL,
    state            TEXT    NOT NULL,
    priority         INTEGER NOT NULL,
    run_at           INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    timeout_ms       INTEGER,
    backoff_ms       INTEGER NOT NULL,
    idempotency_key  TEXT,
    cron_schedule    TEXT,
    cron_tick        INTEGER,
    progress         TEXT,
    result           TEXT,
    error            TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    node             TEXT,
    lease_until      INTEGER
);
CREATE INDEX jobs_claim ON jobs (pool, priority DESC, run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_due ON jobs (state, run_at) WHERE state IN ('scheduled', 'failed');
CREATE INDEX jobs_state ON jobs (state, id);
CREATE INDEX jobs_job ON jobs (job, id);
CREATE UNIQUE INDEX jobs_cron_tick ON jobs (cron_schedule, cron_tick)
    WHERE cron_schedule IS NOT NULL;

CREATE TABLE attempts (
    seq        INTEGER PRIMARY KEY,
    job_id     TEXT    NOT NULL,
    attempt    INTEGER NOT NULL,
    node       TEXT,
    pid        INTEGER,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    outcome    TEXT,
    error      TEXT
);
CREATE INDEX attempts_job ON attempts (job_id, attempt);

CREATE TABLE idempotency (
    key        TEXT    NOT NULL PRIMARY KEY,
    job_id     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE schedules (
    name       TEXT    NOT NULL PRIMARY KEY,
    cron       TEXT    NOT NULL,
    job        TEXT    NOT NULL,
    params     TEXT    NOT NULL,
    missed     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE cron_ticks (
    schedule  TEXT    NOT NULL PRIMARY KEY,
    last_tick INTEGER NOT NULL,
    job_id    TEXT    NOT NULL
) WITHOUT ROWID;

CREATE TABLE job_counts (
    pool  TEXT    NOT NULL,
    state TEXT    NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (pool, state)
) WITHOUT ROWID;
