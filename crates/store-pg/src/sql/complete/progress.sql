-- The last progress of running jobs (arrays: ids, values).
UPDATE offload_jobs j SET progress = u.v, updated_at = offload_now_ms()
FROM unnest($1::uuid[], $2::json[]) AS u(id, v)
WHERE j.id = u.id AND j.state = 'running'
