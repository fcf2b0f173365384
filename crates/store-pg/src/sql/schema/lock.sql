-- Nodes starting together migrate one at a time: the first migrates, the others find the version current.
SELECT pg_advisory_xact_lock($1)
