-- Schema version 12 of the SQLite engine: inserting a job fires no trigger (issue 16).
--
-- `cron_run` (v2) counted a schedule's runs in `cron_state` after every insert of a job with a
-- `cron_schedule`. Its presence alone, whatever its `WHEN`, made every insert into `jobs` a
-- multi-write statement: inside the writer's group transaction SQLite then opened a statement
-- journal for each one and copied into it every page the insert touched (the table and its
-- indexes): 13 % of the writer's time under single submits. The submit that inserts a cron
-- job now counts the run itself, in the same transaction (`sql/submit/count_cron_run.sql`),
-- with the same statement; no other statement inserts jobs.

DROP TRIGGER cron_run;
