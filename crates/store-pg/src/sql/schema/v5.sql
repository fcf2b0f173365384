-- Schema version 5 of the PostgreSQL engine: the node registry (issue 19).
--
-- `offload_nodes`: one row per node id: what it said at its start and at its last heartbeat
-- (`heartbeat_at`, ms on the database's clock), its state (`active`, `draining`, `drained`,
-- `stopped`; `lost` is read from the heartbeat's age) and the drain order an operator gave
-- through any node (`drain_at`: when, `drain_deadline_ms`, `drain_then`: `exit` or `idle`;
-- NULL: none). `load1_centi` is the 1-minute load average in hundredths.

CREATE TABLE offload_nodes (
    id                text PRIMARY KEY,
    host              text NOT NULL,
    version           text NOT NULL,
    pools             json NOT NULL,
    started_at        bigint NOT NULL,
    heartbeat_at      bigint NOT NULL,
    running           bigint NOT NULL DEFAULT 0,
    capacity          bigint NOT NULL DEFAULT 0,
    load1_centi       bigint,
    state             text NOT NULL CHECK (state IN ('active', 'draining', 'drained', 'stopped')),
    drain_at          bigint,
    drain_deadline_ms bigint,
    drain_then        text CHECK (drain_then IN ('exit', 'idle'))
);
