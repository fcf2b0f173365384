"""Async cancellation helpers: mode "asleep" (raises Cancelled) or "wait" (returns what it saw)."""


async def handle(params, ctx):
    if params["mode"] == "asleep":
        await ctx.asleep(params["s"])
        return "slept"
    if params["mode"] == "wait":
        cancelled = await ctx.wait_cancelled(params["s"])
        return {"cancelled": cancelled, "reason": ctx.cancel_reason, "again": await ctx.wait_cancelled(0)}
    if params["mode"] == "blocking_sleep":
        ctx.sleep(0.01)  # refused: it would block the loop
    raise ValueError(params["mode"])

