-- Deletes the history of the minutes before $1.
DELETE FROM offload_stats WHERE minute < $1
