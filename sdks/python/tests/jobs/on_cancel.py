"""A sync job blocked on a child process; ctx.on_cancel() kills the child so the job can stop."""

import subprocess
import sys


def handle(params, ctx):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    ctx.on_cancel(child.kill)
    child.wait()
    ctx.check_cancelled()
    return "child ended by itself"
