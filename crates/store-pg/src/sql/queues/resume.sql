-- Resumes queue ($1 kind, $2 name).
DELETE FROM offload_queue_pauses WHERE kind = $1 AND name = $2
