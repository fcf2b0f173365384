SELECT last_tick FROM cron_ticks WHERE schedule = ?1
