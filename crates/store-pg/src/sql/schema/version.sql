SELECT max(version) AS version FROM offload_schema
