-- Takes every job waiting in `job_cascade`: its trigger releases their dependents (schema v11).
DELETE FROM job_cascade
