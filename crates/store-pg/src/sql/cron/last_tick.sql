SELECT last_tick FROM offload_cron_ticks WHERE schedule = $1
