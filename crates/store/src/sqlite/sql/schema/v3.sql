-- Schema version 3 of the SQLite engine: operations. Released: never edit.
--
-- - `queue_pauses`: the paused queues, a pool (`kind = 'pool'`) or every job of a name
--   (`kind = 'job'`). The claim skips them (`sql/claim/claim.sql`); a row survives restarts.

CREATE TABLE queue_pauses (
    kind      TEXT    NOT NULL CHECK (kind IN ('pool', 'job')),
    name      TEXT    NOT NULL,
    paused_at INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) WITHOUT ROWID;
