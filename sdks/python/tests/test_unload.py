"""A graceful shutdown (the shutdown frame, SIGTERM) calls unload() of every job module loaded,
after the jobs are answered and before the ack, for what remains of the grace (at least 1 s).
Failures are logged and still ack + exit 0. The channel closing calls nothing."""

import os
import shutil
import signal
import tempfile
import time
import unittest

from tests._harness import TEST_JOBS, Worker


def run(w, job, params=None, id="j"):
    w.send({"type": "run", "id": id, "job": job, "params": params})
    return w.expect({"type": "result", "id": id})


class UnloadAtShutdown(unittest.TestCase):
    def setUp(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        self.marker = os.path.join(folder, "marker.txt")

    def read_marker(self):
        with open(self.marker) as f:
            return sorted(f.read().splitlines())

    def test_shutdown_unloads_every_module_once_then_acks(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "unloads", {"marker": self.marker}, id="a")
            run(w, "unloads", {"marker": self.marker}, id="b")
            run(w, "unload_async", {"marker": self.marker}, id="c")
            run(w, "sync_sleep", {"ms": 1}, id="d")  # a module without unload()
            self.assertFalse(os.path.exists(self.marker))
            w.send({"type": "shutdown", "grace_ms": 5000})
            w.expect({"type": "ack", "id": "shutdown"})
            self.assertEqual(w.wait(), 0)
            self.assertEqual(self.read_marker(), ["async", "unloaded"])
            self.assertNotIn("unload", w.stderr_text())

    def test_unload_runs_after_the_running_jobs_are_answered(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "unloads", {"marker": self.marker}, id="a")
            w.send({"type": "run", "id": "s", "job": "sync_sleep", "params": {"ms": 300}})
            time.sleep(0.05)
            w.send({"type": "shutdown", "grace_ms": 5000})
            w.expect({"type": "result", "id": "s", "value": "slept"})
            w.expect({"type": "ack", "id": "shutdown"})
            self.assertEqual(w.wait(), 0)
            self.assertEqual(self.read_marker(), ["unloaded"])

    def test_sigterm_unloads_like_shutdown(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "unloads", {"marker": self.marker})
            w.signal(signal.SIGTERM)
            w.expect({"type": "ack", "id": "shutdown"})
            self.assertEqual(w.wait(), 0)
            self.assertEqual(self.read_marker(), ["unloaded"])

    def test_a_raising_unload_is_logged_and_the_worker_still_acks(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "unload_raises", None, id="a")
            run(w, "unloads", {"marker": self.marker}, id="b")
            w.send({"type": "shutdown", "grace_ms": 5000})
            w.expect({"type": "ack", "id": "shutdown"})
            self.assertEqual(w.wait(), 0)
            self.assertRegex(w.stderr_text(),
                             r"offload worker: unload\(\) of \S+unload_raises\.py failed: ValueError: unload boom")
            self.assertEqual(self.read_marker(), ["unloaded"])

    def test_a_hanging_unload_does_not_keep_the_worker_past_the_grace(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "unload_hangs", None, id="a")
            run(w, "unloads", {"marker": self.marker}, id="b")
            start = time.monotonic()
            w.send({"type": "shutdown", "grace_ms": 0})
            w.expect({"type": "ack", "id": "shutdown"}, timeout=4)
            took = time.monotonic() - start
            self.assertEqual(w.wait(), 0)
            self.assertGreaterEqual(took, 0.9)
            self.assertLess(took, 3.0)
            self.assertEqual(self.read_marker(), ["unloaded"], "the other modules were unloaded")

    def test_eof_exits_at_once_without_unload(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "unloads", {"marker": self.marker})
            w.close()
            self.assertEqual(w.wait(), 0)
            self.assertFalse(os.path.exists(self.marker))


if __name__ == "__main__":
    unittest.main()
