-- Pauses queue (?1 kind, ?2 name) at ?3; a queue paused already keeps its time (no row changed).
INSERT INTO queue_pauses (kind, name, paused_at) VALUES (?1, ?2, ?3)
ON CONFLICT (kind, name) DO NOTHING
