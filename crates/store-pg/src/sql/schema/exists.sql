SELECT to_regclass('offload_schema') IS NOT NULL AS present
