-- Running jobs per limited queue (index `offload_jobs_running`).
SELECT l.kind, l.name, count(j.id) AS n
FROM offload_queue_limits l
LEFT JOIN offload_jobs j ON j.state = 'running'
    AND ((l.kind = 'pool' AND j.pool = l.name) OR (l.kind = 'job' AND j.job = l.name))
GROUP BY l.kind, l.name
