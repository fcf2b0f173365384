"""Forks a child that gets SIGTERM (as multiprocessing's Pool.terminate() does to its workers):
the signal must end the child, not shut the worker down."""

import os
import signal
import time


def handle(params, ctx):
    child = os.fork()
    if child == 0:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(2)
        finally:
            os._exit(0)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)
