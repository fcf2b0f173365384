"""Conformance fixture `barrier`: waits until params.n barrier jobs are running at once in this
process, then result params.n (sync handlers on the worker's threads; needs concurrency >= n)."""

import threading

_cond = threading.Condition()
_arrived = 0  # jobs waiting at the barrier of the current generation
_generation = 0  # bumped each time n jobs met


def handle(params, ctx):
    global _arrived, _generation
    n = params["n"]
    with _cond:
        generation = _generation
        _arrived += 1
        if _arrived >= n:
            _arrived = 0
            _generation += 1
            _cond.notify_all()
            return n
        while _generation == generation:
            if ctx.cancelled:
                _arrived -= 1
                ctx.check_cancelled()
            _cond.wait(0.05)
    return n
