-- Schema version 5 of the SQLite engine: the node registry (issue 19).
--
-- `nodes`: one row per node id (one node on SQLite): what it said at its start and at its last
-- heartbeat (`heartbeat_at`, ms), its state (`active`, `draining`, `drained`, `stopped`; `lost`
-- is read from the heartbeat's age) and the drain order an operator gave (`drain_at`: when,
-- `drain_deadline_ms`, `drain_then`: `exit` or `idle`; NULL: none). `pools` is a JSON array;
-- `load1_centi` the 1-minute load average in hundredths.

CREATE TABLE nodes (
    id                TEXT PRIMARY KEY,
    host              TEXT NOT NULL,
    version           TEXT NOT NULL,
    pools             TEXT NOT NULL,
    started_at        INTEGER NOT NULL,
    heartbeat_at      INTEGER NOT NULL,
    running           INTEGER NOT NULL DEFAULT 0,
    capacity          INTEGER NOT NULL DEFAULT 0,
    load1_centi       INTEGER,
    state             TEXT NOT NULL,
    drain_at          INTEGER,
    drain_deadline_ms INTEGER,
    drain_then        TEXT
) WITHOUT ROWID;
