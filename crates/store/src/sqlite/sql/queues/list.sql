-- Every paused queue, pools first, then by name.
SELECT kind, name, paused_at FROM queue_pauses ORDER BY kind DESC, name
