"""A periodic job (see the [[cron]] example in offload.toml): reports what a cleanup would do."""
import time


def handle(params, ctx):
    older_than_days = int((params or {}).get("older_than_days", 7))
    return {"checked_at": int(time.time()), "older_than_days": older_than_days, "removed": 0}
