# offload Python pool job: busy-waits 1 ms (no sleep), returns x.
import time


def handle(params, ctx):
    end = time.perf_counter_ns() + 1_000_000
    while time.perf_counter_ns() < end:
        pass
    return params["x"]
