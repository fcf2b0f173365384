INSERT INTO offload_schema (version) VALUES ($1)
