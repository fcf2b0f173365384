"""In-process unit tests: the bounded line reader, frame encoding, job names and the loader,
event listeners, and ctx without a runner."""

import asyncio
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest

import offload_worker
from offload_worker import _events, _jobs
from offload_worker._channel import LineReader, ProtocolError, Writer, decode


class LineReaderTest(unittest.TestCase):
    def reader(self, max_frame, chunk=65536):
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        return a, b, LineReader(b.fileno(), max_frame, chunk)

    def test_lines_split_and_joined_across_reads(self):
        a, b, r = self.reader(100, chunk=3)
        a.sendall(b'{"a":1}\n{"b"')
        a.sendall(b':2}\n\n{"c":3}\n')
        a.shutdown(socket.SHUT_WR)
        self.assertEqual([r.read_line() for _ in range(4)], [b'{"a":1}', b'{"b":2}', b"", b'{"c":3}'])
        self.assertIsNone(r.read_line())

    def test_a_partial_last_line_at_eof_is_dropped(self):
        a, b, r = self.reader(100)
        a.sendall(b'{"a":1}\n{"trunc')
        a.shutdown(socket.SHUT_WR)
        self.assertEqual(r.read_line(), b'{"a":1}')
        self.assertIsNone(r.read_line())

    def test_a_line_of_exactly_the_limit_passes_one_more_byte_fails(self):
        a, b, r = self.reader(10)
        a.sendall(b"x" * 10 + b"\n" + b"y" * 11 + b"\n")
        self.assertEqual(r.read_line(), b"x" * 10)
        with self.assertRaises(ProtocolError):
            r.read_line()

    def test_the_reader_never_takes_more_than_the_limit_plus_one_byte(self):
        limit = 1000
        a, b, r = self.reader(limit)
        total = 50000
        a.sendall(b"z" * total)  # fits in the socket buffer; an endless line as far as r knows
        with self.assertRaises(ProtocolError) as cm:
            r.read_line()
        self.assertIn("longer than OFFLOAD_MAX_FRAME (1000 bytes)", str(cm.exception))
        b.setblocking(False)
        left = 0
        while True:
            try:
                data = b.recv(1 << 16)
            except BlockingIOError:
                break
            left += len(data)
        self.assertEqual(total - left, limit + 1, "bytes the reader consumed")
        self.assertEqual(len(r._buf), 0)


class FrameTest(unittest.TestCase):
    def test_decode(self):
        self.assertEqual(decode(b'{"type":"ping","id":"p"}'), {"type": "ping", "id": "p"})
        self.assertIsNone(decode(b"  \t\r"))
        for raw, hint in [(b"[1]", "array"), (b"nul", "JSON"), (b'"\xc3\x28"', "UTF-8"), (b"3", "number"),
                          (b"[" * 100000, "JSON")]:
            with self.assertRaises(ProtocolError) as cm:
                decode(raw)
            self.assertIn(hint, str(cm.exception))

    def test_encode_is_compact_utf8_with_one_newline(self):
        w = Writer(-1, 64, on_closed=None)
        self.assertEqual(w.encode({"a": [1, "ü ✓\n"]}), '{"a":[1,"ü ✓\\n"]}\n'.encode("utf-8"))
        with self.assertRaises(offload_worker.FrameTooLarge):
            w.encode("x" * 64)
        with self.assertRaises(ValueError):
            w.encode(float("inf"))
        with self.assertRaises(TypeError):
            w.encode({1, 2})


class JobNamesTest(unittest.TestCase):
    def test_job_file(self):
        self.assertEqual(_jobs.job_file("/jobs", "images/resize"), "/jobs/images/resize.py")
        self.assertEqual(_jobs.job_file("/jobs", "echo.py"), "/jobs/echo.py")
        for bad in ["", "..", "../x", "a/../b", "a/./b", "./a", "/abs", "a//b", "a/", "a\x00b", "a\tb", "a\\b", 7, None]:
            with self.assertRaises(offload_worker.JobNotFound, msg=repr(bad)):
                _jobs.job_file("/jobs", bad)
        with self.assertRaises(offload_worker.JobNotFound) as cm:
            _jobs.job_file(None, "echo")
        self.assertIn("OFFLOAD_JOBS_DIR", str(cm.exception))

    def test_legacy_job_name(self):
        self.assertEqual(_jobs.legacy_job_name("/srv/jobs/timer.js"), "timer")
        self.assertEqual(_jobs.legacy_job_name("./jobs/timer"), "jobs/timer")
        self.assertEqual(_jobs.legacy_job_name("echo"), "echo")
        self.assertEqual(_jobs.legacy_job_name("a/b.py"), "a/b")


class LoaderTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.dir)
        self.loader = _jobs.Loader(self.dir)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_modules_are_cached_and_registered(self):
        path = self.write("dc.py", "import dataclasses\n@dataclasses.dataclass\nclass P:\n    x: int\n"
                                   "def handle(params, ctx):\n    return P(1).x\n")
        m = self.loader.load(path)
        self.assertIs(self.loader.load(path), m)
        self.assertIs(sys.modules[m.__name__], m)
        self.assertEqual(m.handle(None, None), 1)
        self.assertEqual(m.__file__, path)

    def test_reload_calls_unload_drops_listeners_and_reads_the_new_source(self):
        calls = []
        self.addCleanup(_events.off_event, "unit-reload")
        template = ("import offload_worker\nV = %d\ndef handle(p, c):\n    return V\n"
                    "def unload():\n    CALLS.append(V)\n"
                    "@offload_worker.on_event('unit-reload')\ndef listen(data):\n    return V\n")
        path = self.write("v.py", template % 1)
        m1 = self.loader.load(path)
        m1.CALLS = calls
        self.assertEqual([f(None) for f in _events.listeners("unit-reload")], [1])
        self.write("v.py", template % 2)  # same size, same second
        m2 = self.loader.reload(path)
        self.assertEqual((calls, m2.V, m2.__name__), ([1], 2, m1.__name__))
        self.assertEqual([f(None) for f in _events.listeners("unit-reload")], [2])
        self.assertIs(self.loader.load(path), m2)

    def test_a_failing_unload_propagates_and_the_next_load_is_fresh(self):
        path = self.write("u.py", "def handle(p, c):\n    return 1\ndef unload():\n    raise RuntimeError('no')\n")
        m1 = self.loader.load(path)
        with self.assertRaises(RuntimeError):
            self.loader.reload(path)
        self.assertIsNot(self.loader.load(path), m1)

    def test_a_failing_import_is_not_cached(self):
        path = self.write("bad.py", "raise KeyError('x')\n")
        with self.assertRaises(KeyError):
            self.loader.load(path)
        self.write("bad.py", "OK = 1\n")
        self.assertEqual(self.loader.load(path).OK, 1)

    def test_missing_and_non_python_files(self):
        with self.assertRaises(offload_worker.JobNotFound):
            self.loader.load(os.path.join(self.dir, "missing.py"))
        with self.assertRaises(offload_worker.JobNotFound):
            self.loader.load(self.write("job.js", "module.exports = 1\n"))
        self.write("legacy.py", "X = 1\n")  # an ee-core style path without extension
        self.assertEqual(self.loader.load(os.path.join(self.dir, "legacy")).X, 1)


class EventsTest(unittest.TestCase):
    def test_on_and_off(self):
        def fn(data):
            return data

        self.assertIs(offload_worker.on_event("unit-e", fn), fn)
        decorated = offload_worker.on_event("unit-e")(len)
        self.assertIs(decorated, len)
        self.assertEqual(_events.listeners("unit-e"), (fn, len))
        self.assertTrue(offload_worker.off_event("unit-e", fn))
        self.assertFalse(offload_worker.off_event("unit-e", fn))
        self.assertTrue(offload_worker.off_event("unit-e"))
        self.assertEqual(_events.listeners("unit-e"), ())
        with self.assertRaises(TypeError):
            offload_worker.on_event("", fn)
        with self.assertRaises(TypeError):
            offload_worker.on_event("x", 3)


class ContextTest(unittest.TestCase):
    def ctx(self):
        return offload_worker.Context("j1", "demo", {"a": 1})

    def cancel_later(self, ctx, reason="cancel", after=0.05):
        t = threading.Timer(after, ctx._token.cancel, (reason,))
        t.start()
        self.addCleanup(t.cancel)

    def test_progress_and_emit_frames(self):
        ctx = self.ctx()
        ctx.progress({"done": 1})
        ctx.emit("tick", [1], receiver="childJob")
        ctx.emit("tock")
        self.assertEqual(ctx.sent, [
            {"type": "progress", "id": "j1", "data": {"done": 1}},
            {"type": "event", "name": "tick", "data": [1], "receiver": "job", "id": "j1"},
            {"type": "event", "name": "tock", "data": None, "receiver": "all", "id": "j1"},
        ])
        with self.assertRaises(ValueError):
            ctx.emit("x", receiver="nobody")
        with self.assertRaises(TypeError):
            ctx.emit(None)

    def test_sleep_raises_when_cancelled_and_wait_reports(self):
        ctx = self.ctx()
        self.assertFalse(ctx.wait(0.01))
        seen = []
        ctx.on_cancel(lambda: seen.append("cb"))
        self.cancel_later(ctx)
        start = time.monotonic()
        with self.assertRaises(offload_worker.Cancelled):
            ctx.sleep(30)
        self.assertLess(time.monotonic() - start, 10)
        self.assertTrue(ctx.cancelled and ctx.wait(0))
        self.assertEqual(seen, ["cb"])
        ctx.on_cancel(lambda: seen.append("late"))  # already cancelled: called at once
        self.assertEqual(seen, ["cb", "late"])

    def test_a_deadline_raises_deadline_exceeded_which_is_a_cancelled(self):
        ctx = self.ctx()
        ctx._token.cancel("deadline")
        ctx._token.cancel("cancel")  # fires once: the first reason stays
        self.assertEqual(ctx.cancel_reason, "deadline")
        with self.assertRaises(offload_worker.DeadlineExceeded):
            ctx.check_cancelled()
        self.assertTrue(issubclass(offload_worker.DeadlineExceeded, offload_worker.Cancelled))
        self.assertFalse(issubclass(offload_worker.Cancelled, Exception), "a broad except does not swallow it")

    def test_wait_cancelled_outside_the_runner(self):
        ctx = self.ctx()

        async def main():
            first = await ctx.wait_cancelled(0.01)
            self.cancel_later(ctx)
            second = await ctx.wait_cancelled(30)
            with self.assertRaises(offload_worker.Cancelled):
                await ctx.asleep(30)
            return first, second

        self.assertEqual(asyncio.run(main()), (False, True))


if __name__ == "__main__":
    unittest.main()


class NonRetryableErrorTest(unittest.TestCase):
    """`retry: false` on the wire only for errors that ask for it."""

    def test_only_marked_errors_carry_retry_false(self):
        from offload_worker._runner import _error_object
        from offload_worker._context import Context

        self.assertNotIn("retry", _error_object(ValueError("x"), None, stack=False))
        e = _error_object(offload_worker.NonRetryableError("no such user"), None, stack=False)
        self.assertEqual((e["name"], e["retry"]), ("NonRetryableError", False))
        with self.assertRaises(KeyError) as raised:
            Context.fail(None, KeyError("k"), retry=False)
        self.assertEqual(_error_object(raised.exception, None, stack=False)["retry"], False)
        with self.assertRaises(RuntimeError) as raised:
            Context.fail(None, "plain")
        self.assertNotIn("retry", _error_object(raised.exception, None, stack=False))


class PendingDescriptors(unittest.TestCase):
    """Descriptors waiting for their run (offload_worker/_fds.py, docs/protocol.md §9)."""

    def _pipe_w(self):
        r, w = os.pipe()
        self.addCleanup(os.close, r)
        return w

    def test_kept_in_order_wrapped_and_closed_when_not_taken(self):
        from offload_worker import _fds
        p = _fds.PendingFds()
        w0, w1 = self._pipe_w(), self._pipe_w()
        self.assertTrue(p.offer({"type": "fd", "id": "r", "index": 0, "of": 2, "kind": "pipe"}, w0))
        self.assertTrue(p.offer({"type": "fd", "id": "r", "index": 1, "of": 2, "kind": "pipe"}, w1))
        files = p.take("r", 2)
        self.assertEqual([f.fileno() for f in files], [w0, w1])
        self.assertEqual(files[0].mode, "wb")
        _fds.close_all(files)
        self.assertRaises(OSError, os.fstat, w0)

    def test_refused_out_of_order_or_missing_and_forgotten_on_cancel(self):
        from offload_worker import _fds
        p = _fds.PendingFds()
        self.assertFalse(p.offer({"type": "fd", "id": "r", "index": 0, "of": 1, "kind": "pipe"}, None))
        late = self._pipe_w()
        self.assertFalse(p.offer({"type": "fd", "id": "r", "index": 1, "of": 2, "kind": "pipe"}, late))
        self.assertRaises(OSError, os.fstat, late)  # closed
        kept = self._pipe_w()
        self.assertTrue(p.offer({"type": "fd", "id": "c", "index": 0, "of": 2, "kind": "pipe"}, kept))
        self.assertRaises(ValueError, p.take, "c", 2)  # one of two: closed
        self.assertRaises(OSError, os.fstat, kept)
        again = self._pipe_w()
        p.offer({"type": "fd", "id": "x", "index": 0, "of": 1, "kind": "pipe"}, again)
        p.forget("x")
        self.assertRaises(OSError, os.fstat, again)
