-- One more run of schedule ?1 (its job was just inserted; schema v12 moved this from the
-- trigger `cron_run`).
INSERT INTO cron_state (schedule, runs) VALUES (?1, 1)
ON CONFLICT (schedule) DO UPDATE SET runs = runs + 1
