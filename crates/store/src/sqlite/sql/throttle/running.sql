-- Running jobs of the pool (?1 = 'pool') or job name (?1 = 'job') ?2 (index `jobs_running`).
SELECT count(*) AS n FROM jobs
WHERE state = 'running' AND ((?1 = 'pool' AND pool = ?2) OR (?1 = 'job' AND job = ?2))
