"""Flow control (busy/ready), the heap in pong, shutdown hooks (on_shutdown) and the hard-kill
notice (on_hard_kill), through a real runner process."""

import os
import shutil
import tempfile
import textwrap
import unittest

from tests._harness import Worker

JOBS = {
    "hooks.py": """
        import time
        import offload_worker

        def handle(params, ctx):
            soft = params.get("soft")
            if soft == "slow":
                def slow():
                    time.sleep(0.2)
                    offload_worker.emit("soft-done")
                offload_worker.on_shutdown(slow)
            elif soft == "never":
                offload_worker.on_shutdown(lambda: time.sleep(3600))
            elif soft == "throws":
                def boom():
                    raise ValueError("hook boom")
                offload_worker.on_shutdown(boom)
            if params.get("hard"):
                offload_worker.on_hard_kill(lambda: offload_worker.emit("hard", 1))
            return None
    """,
    "flow.py": """
        import offload_worker

        def handle(params, ctx):
            (offload_worker.busy if params["busy"] else offload_worker.ready)()
            return params["busy"]
    """,
    "sleep.py": """
        import asyncio

        async def handle(params, ctx):
            await asyncio.sleep(params["ms"] / 1000.0)
            return "slept"
    """,
}


class Control(unittest.TestCase):
    def setUp(self):
        self.jobs = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.jobs)
        for name, text in JOBS.items():
            with open(os.path.join(self.jobs, name), "w") as f:
                f.write(textwrap.dedent(text))

    def run_job(self, w, job, params, id):
        w.send({"type": "run", "id": id, "job": job, "params": params})
        return w.expect({"type": "result", "id": id})

    def test_busy_then_ready_in_order_with_the_answers(self):
        with Worker(jobs_dir=self.jobs) as w:
            w.ready()
            w.send({"type": "run", "id": "a", "job": "flow", "params": {"busy": True}})
            w.expect({"type": "busy"})
            w.expect({"type": "result", "id": "a", "value": True})
            w.send({"type": "run", "id": "b", "job": "flow", "params": {"busy": False}})
            w.expect({"type": "ready"})
            w.expect({"type": "result", "id": "b", "value": False})

    def test_pong_carries_the_heap(self):
        with Worker(jobs_dir=self.jobs) as w:
            w.ready()
            w.send({"type": "ping", "id": "p"})
            pong = w.expect({"type": "pong", "id": "p"})
            self.assertGreater(pong["heap_used"], 0)
            self.assertGreaterEqual(pong["heap_total"], pong["heap_used"] // 2)

    def test_the_ack_waits_for_a_shutdown_hook_and_the_running_job(self):
        with Worker(jobs_dir=self.jobs) as w:
            w.ready()
            self.run_job(w, "hooks", {"soft": "slow"}, "h")
            w.send({"type": "run", "id": "s", "job": "sleep", "params": {"ms": 50}})
            w.send({"type": "shutdown", "grace_ms": 5000})
            got = sorted((f["type"], f.get("id") or f.get("name")) for f in (w.recv(), w.recv()))
            self.assertEqual(got, [("event", "soft-done"), ("result", "s")])
            w.expect({"type": "ack", "id": "shutdown"})
            self.assertEqual(w.wait(), 0)

    def test_a_hook_that_hangs_or_throws_does_not_stop_the_shutdown(self):
        for soft, text in (("never", "did not finish within the grace"), ("throws", "hook boom")):
            with Worker(jobs_dir=self.jobs) as w:
                w.ready()
                self.run_job(w, "hooks", {"soft": soft}, "h")
                w.send({"type": "shutdown", "grace_ms": 100})
                w.expect({"type": "ack", "id": "shutdown"})
                self.assertEqual(w.wait(), 0)
                self.assertIn(text, w.stderr_text())

    def test_the_kill_notice_runs_the_hard_kill_hook_and_exits(self):
        with Worker(jobs_dir=self.jobs) as w:
            w.ready()
            self.run_job(w, "hooks", {"hard": True}, "h")
            w.send({"type": "run", "id": "long", "job": "sleep", "params": {"ms": 60000}})
            w.send({"type": "kill", "grace_ms": 5000})
            w.expect({"type": "event", "name": "hard", "data": 1})
            self.assertEqual(w.wait(), 0)


if __name__ == "__main__":
    unittest.main()
