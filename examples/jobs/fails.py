"""A job that fails: it raises after reporting where it got to. Shows errors with stacks,
retries with backoff and the `dead` state."""


def handle(params, ctx):
    step = (params or {}).get("step", 1)
    ctx.progress({"done": step, "total": 3})
    raise ValueError(f"step {step} of 3 cannot be done: the input is not valid")
