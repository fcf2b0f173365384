-- Deletes the history of the minutes before ?1.
DELETE FROM stats WHERE minute < ?1
