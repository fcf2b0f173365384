"""The runner as a child process: behaviour beyond cases.json (sync and async jobs, cancel,
deadline, shutdown and SIGTERM, job resolution, calls, events, limits, protocol errors)."""

import os
import shutil
import signal
import tempfile
import threading
import time
import unittest

from tests._harness import FIXTURES, TEST_JOBS, Worker, encode


def run(w, job, params=None, id="j", **extra):
    w.send(dict({"type": "run", "id": id, "job": job, "params": params}, **extra))


def error_of(test, frame, name, id="j"):
    test.assertEqual((frame["type"], frame["id"]), ("error", id), frame)
    test.assertEqual(frame["error"]["name"], name, frame)
    return frame["error"]


def now_ms():
    return int(time.time() * 1000)


class Jobs(unittest.TestCase):
    def test_sync_and_async_results(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "calls", None)
            w.expect({"type": "result", "id": "j", "value": "handled"})
            run(w, "stubborn", {"s": 0, "async": True})
            w.expect({"type": "result", "id": "j", "value": {"done": "anyway", "cancelled": False}})

    def test_ctx_fields_and_channel_hygiene(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            deadline = now_ms() + 60000
            run(w, "info", {"p": 1}, id="i1", deadline=deadline, args=[{"p": 1}, 2])
            value = w.expect({"type": "result", "id": "i1"})["value"]
            self.assertEqual(value["id"], "i1")
            self.assertEqual(value["job"], "info")
            self.assertEqual(value["params"], {"p": 1})
            self.assertEqual(value["args"], [{"p": 1}, 2])
            self.assertEqual(value["deadline"], deadline)
            self.assertFalse(value["cancelled"])
            self.assertIsNone(value["channel_env"], "OFFLOAD_CHANNEL_FD is removed from the jobs' environment")
            self.assertIs(value["channel_inherited"], False, "the channel is not inherited by the jobs' children")

    def test_error_names_the_class_and_has_the_jobs_stack(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "declined", {"card": "4242"})
            err = error_of(self, w.recv(), "PaymentDeclined")
            self.assertEqual(err["message"], "card 4242 declined")
            self.assertIn("declined.py", err["stack"])
            self.assertIn("_charge", err["stack"])
            self.assertNotIn("_runner.py", err["stack"], "the runner's own frames are hidden")

    def test_non_serializable_results_are_type_errors(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            for kind, hint in [("set", "set"), ("nan", "float"), ("circular", "ircular"),
                               ("surrogate", "surrogate"), ("bytes", "bytes")]:
                run(w, "values", {"kind": kind}, id=kind)
                err = error_of(self, w.recv(), "TypeError", id=kind)
                self.assertIn("not JSON-serializable", err["message"])
                self.assertIn(hint, err["message"])
            run(w, "values", {"kind": "fine"}, id="ok")
            w.expect({"type": "result", "id": "ok", "value": "fine"})

    def test_progress_and_events_the_runner_refuses_raise_in_the_job(self):
        with Worker(env={"OFFLOAD_MAX_FRAME": "65536"}, jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "bad_frames", {"kind": "huge_progress"}, id="a")
            self.assertIn("OFFLOAD_MAX_FRAME", error_of(self, w.recv(), "FrameTooLarge", id="a")["message"])
            run(w, "bad_frames", {"kind": "set_progress"}, id="b")
            error_of(self, w.recv(), "TypeError", id="b")
            run(w, "bad_frames", {"kind": "receiver"}, id="c")
            error_of(self, w.recv(), "ValueError", id="c")
            run(w, "bad_frames", {"kind": "caught"}, id="d")
            self.assertTrue(w.expect({"type": "result", "id": "d"})["value"].startswith("caught: the progress is"))

    def test_stdout_and_stderr_are_the_jobs_logs(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "printer", 7)
            w.expect({"type": "result", "id": "j", "value": "printed"})
            w.nothing_for(0.1)
            w.close()
            w.wait()
            self.assertIn("hello from stdout 7\n", w.stdout_text())
            self.assertIn("hello from stderr\n", w.stderr_text())

    def test_frames_from_many_threads_never_interleave(self):
        with Worker(env={"OFFLOAD_CONCURRENCY": "4"}, jobs_dir=TEST_JOBS) as w:
            w.ready()
            for i in range(4):
                run(w, "noisy", {"count": 150, "size": 20000}, id="n%d" % i)
            next_i = {"n%d" % i: 0 for i in range(4)}
            results = 0
            while results < 4:
                frame = w.recv()  # a torn frame would not parse
                if frame["type"] == "progress":
                    self.assertEqual(frame["data"]["i"], next_i[frame["id"]])
                    self.assertEqual(len(frame["data"]["pad"]), 20000)
                    next_i[frame["id"]] += 1
                else:
                    self.assertEqual(frame["type"], "result", frame)
                    self.assertEqual(next_i[frame["id"]], 150, "all progress comes before the result")
                    results += 1

    def test_job_code_at_import_runs_off_the_reader_thread(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "slow_import", None, id="s")
            time.sleep(0.1)
            w.send({"type": "ping", "id": "p"})
            w.expect({"type": "pong", "id": "p"}, timeout=2)
            w.close()
            t = time.monotonic()
            w.wait()
            self.assertLess(time.monotonic() - t, 1.0)


class Resolution(unittest.TestCase):
    def test_names_escaping_the_jobs_folder_are_refused(self):
        bad = ["../escape", "sub/../calls", "/etc/passwd", "a\u0000b", "a\nb", "a\x7fb", "", "sub//nested",
               "./calls", "sub\\nested", "sub/"]
        with Worker(jobs_dir=os.path.join(TEST_JOBS, "sub")) as w:
            w.ready()
            for i, name in enumerate(bad):
                run(w, name, None, id="b%d" % i)
                err = error_of(self, w.recv(), "JobNotFound", id="b%d" % i)
                self.assertIn(repr(name), err["message"])
            run(w, "nested", None, id="ok")
            w.expect({"type": "result", "id": "ok", "value": "nested"})

    def test_nested_names_absolute_paths_and_missing_files(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "sub/nested", None, id="a")
            w.expect({"type": "result", "id": "a", "value": "nested"})
            run(w, "nested", None, id="b", path=os.path.join(TEST_JOBS, "sub", "nested.py"))
            w.expect({"type": "result", "id": "b", "value": "nested"})
            w.send({"type": "run", "id": "c", "path": os.path.join(FIXTURES, "echo.py"), "params": 1})
            w.expect({"type": "result", "id": "c", "value": 1})
            run(w, "nope/missing", None, id="d")
            self.assertIn("missing.py", error_of(self, w.recv(), "JobNotFound", id="d")["message"])
            run(w, "x", None, id="e", path="relative/x.py")
            self.assertIn("not absolute", error_of(self, w.recv(), "JobNotFound", id="e")["message"])

    def test_bad_job_files(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        with open(os.path.join(folder, "syntax.py"), "w") as f:
            f.write("def handle(params, ctx)\n    return 1\n")
        with open(os.path.join(folder, "nohandle.py"), "w") as f:
            f.write("def run(params, ctx):\n    return 1\n")
        with open(os.path.join(folder, "boom.py"), "w") as f:
            f.write("raise ImportError('a dependency is missing')\n")
        with Worker(jobs_dir=folder) as w:
            w.ready()
            run(w, "syntax", None, id="a")
            error_of(self, w.recv(), "SyntaxError", id="a")
            run(w, "nohandle", None, id="b")
            self.assertIn("handle(params, ctx)", error_of(self, w.recv(), "JobNotFound", id="b")["message"])
            run(w, "boom", None, id="c")
            self.assertEqual(error_of(self, w.recv(), "ImportError", id="c")["message"], "a dependency is missing")

    def test_legacy_run_with_an_absolute_path_and_legacy_call(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            w.send({"mid": "m1", "cmd": "run", "jobPath": os.path.join(TEST_JOBS, "info.py"), "jobParams": [{"x": 1}, 2]})
            value = w.expect({"type": "result", "id": "m1"})["value"]
            self.assertEqual((value["job"], value["params"], value["args"]), ("info", {"x": 1}, [{"x": 1}, 2]))
            w.send({"mid": "m2", "cmd": "run", "jobPath": "./calls.js", "jobFunc": "add", "jobFuncParams": [2, 3]})
            w.expect({"type": "result", "id": "m2", "value": 5})
            w.send({"mid": "m3", "cmd": "run", "jobPath": "calls"})
            w.expect({"type": "result", "id": "m3", "value": "handled"})
            # A descriptor frame without a descriptor is refused, as Node refuses it (§9).
            w.send({"cmd": "NODE_HANDLE", "msg": {}})
            w.expect({"cmd": "NODE_HANDLE_NACK"})
            w.send({"channel": "ee#sendToMain", "event": "x"})
            w.send({"cmd": "stop"})
            w.send({"type": "ping", "id": "p"})
            w.expect({"type": "pong", "id": "p"})


class Reload(unittest.TestCase):
    def test_reload_calls_unload_and_loads_the_new_code(self):
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        shutil.copy(os.path.join(TEST_JOBS, "reloader.py"), folder)
        marker = os.path.join(folder, "unloaded.txt")
        source = (
            "VERSION = %d\n"
            "def handle(params, ctx):\n"
            "    return VERSION\n"
            "def unload():\n"
            "    with open(%r, 'a') as f:\n"
            "        f.write('unloaded %%d\\n' %% VERSION)\n"
        )
        job = os.path.join(folder, "versioned.py")
        with open(job, "w") as f:
            f.write(source % (1, marker))
        with Worker(jobs_dir=folder) as w:
            w.ready()
            run(w, "versioned", None, id="a")
            w.expect({"type": "result", "id": "a", "value": 1})
            with open(job, "w") as f:  # same size, same second: a .pyc check would miss it
                f.write(source % (2, marker))
            run(w, "versioned", None, id="b")
            w.expect({"type": "result", "id": "b", "value": 1})  # cached until reloaded
            self.assertFalse(os.path.exists(marker))
            run(w, "reloader", {"job": "versioned"}, id="c")
            w.expect({"type": "result", "id": "c", "value": "$string"})
            with open(marker) as f:
                self.assertEqual(f.read(), "unloaded 1\n")
            run(w, "versioned", None, id="d")
            w.expect({"type": "result", "id": "d", "value": 2})
            run(w, "reloader", {"job": job}, id="e")  # an absolute path works too
            w.expect({"type": "result", "id": "e"})
            with open(marker) as f:
                self.assertEqual(f.read(), "unloaded 1\nunloaded 2\n")
        self.assertFalse(os.path.exists(os.path.join(folder, "__pycache__")), "no bytecode is written in the jobs folder")


class Calls(unittest.TestCase):
    def test_call_reaches_top_level_functions_only(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            w.send({"type": "call", "id": "a", "job": "calls", "func": "add", "args": [1, 2]})
            w.expect({"type": "result", "id": "a", "value": 3})
            w.send({"type": "call", "id": "b", "job": "calls", "func": "aadd", "args": [1, 2]})
            w.expect({"type": "result", "id": "b", "value": 3})
            for func in ["_private", "getcwd", "VALUE", "missing", "__init__"]:
                w.send({"type": "call", "id": func, "job": "calls", "func": func})
                self.assertIn(repr(func), error_of(self, w.recv(), "NoSuchFunction", id=func)["message"])
            w.send({"type": "call", "id": "c", "job": "calls", "func": "add", "args": [1]})
            error_of(self, w.recv(), "TypeError", id="c")


class Cancellation(unittest.TestCase):
    def test_sync_job_cancelled_through_ctx_sleep(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "sync_sleep", {"ms": 30000})
            time.sleep(0.1)
            w.send({"type": "cancel", "id": "j"})
            err = error_of(self, w.recv(timeout=3), "Cancelled")
            self.assertIn("sync_sleep.py", err["stack"])
            run(w, "sync_sleep", {"ms": 1}, id="k")
            w.expect({"type": "result", "id": "k", "value": "slept"})

    def test_sync_job_stops_a_child_process_with_on_cancel(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "on_cancel", None)
            time.sleep(0.3)
            w.send({"type": "cancel", "id": "j"})
            error_of(self, w.recv(timeout=3), "Cancelled")

    def test_async_job_with_ctx_asleep_and_wait_cancelled(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "async_wait", {"mode": "asleep", "s": 30}, id="a")
            time.sleep(0.1)
            w.send({"type": "cancel", "id": "a"})
            error_of(self, w.recv(timeout=3), "Cancelled", id="a")
            run(w, "async_wait", {"mode": "wait", "s": 30}, id="b")
            time.sleep(0.1)
            w.send({"type": "cancel", "id": "b"})
            w.expect({"type": "result", "id": "b", "value": {"cancelled": True, "reason": "cancel", "again": True}})
            run(w, "async_wait", {"mode": "wait", "s": 0.05}, id="c")
            w.expect({"type": "result", "id": "c", "value": {"cancelled": False, "reason": None, "again": False}})
            run(w, "async_wait", {"mode": "blocking_sleep"}, id="d")
            self.assertIn("await ctx.asleep()", error_of(self, w.recv(), "RuntimeError", id="d")["message"])

    def test_jobs_that_ignore_cancellation_still_send_their_result(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            for i, params in enumerate([{"s": 0.3}, {"s": 30, "async": True}]):
                run(w, "stubborn", params, id=str(i))
                time.sleep(0.1)
                w.send({"type": "cancel", "id": str(i)})
                w.expect({"type": "result", "id": str(i),
                          "value": {"done": "anyway", "cancelled": True, "reason": "cancel"}})

    def test_cancel_of_finished_or_unknown_ids_is_ignored(self):
        with Worker() as w:
            w.ready()
            run(w, "echo", 1)
            w.expect({"type": "result", "id": "j", "value": 1})
            w.send({"type": "cancel", "id": "j"})
            w.send({"type": "cancel", "id": "never"})
            run(w, "echo", 2)
            w.expect({"type": "result", "id": "j", "value": 2})


class Deadline(unittest.TestCase):
    def test_deadline_cancels_sync_and_async_jobs(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            for job, params in [("sync_sleep", {"ms": 30000}), ("async_wait", {"mode": "asleep", "s": 30})]:
                start = time.monotonic()
                run(w, job, params, id=job, deadline=now_ms() + 300)
                err = error_of(self, w.recv(timeout=5), "DeadlineExceeded", id=job)
                self.assertIn("deadline", err["message"])
                self.assertGreater(time.monotonic() - start, 0.25)

    def test_deadline_cancels_asyncio_awaits(self):
        with Worker() as w:
            w.ready()
            run(w, "sleep", {"ms": 30000}, deadline=now_ms() + 200)
            error_of(self, w.recv(timeout=5), "DeadlineExceeded")

    def test_a_job_whose_deadline_has_passed_does_not_start(self):
        with Worker() as w:
            w.ready()
            run(w, "echo", 1, deadline=now_ms() - 1000)
            error_of(self, w.recv(), "DeadlineExceeded")

    def test_a_job_that_ignores_its_deadline_still_sends_its_result(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "stubborn", {"s": 0.4}, deadline=now_ms() + 100)
            w.expect({"type": "result", "id": "j", "value": {"cancelled": True, "reason": "deadline"}})


class Concurrency(unittest.TestCase):
    def test_more_runs_than_concurrency_are_busy(self):
        with Worker(env={"OFFLOAD_CONCURRENCY": "2"}) as w:
            w.expect({"type": "ready", "concurrency": 2})
            run(w, "sleep", {"ms": 30000}, id="a")
            run(w, "sleep", {"ms": 30000}, id="b")
            run(w, "echo", 1, id="c")
            err = error_of(self, w.recv(), "Busy", id="c")
            self.assertIn("OFFLOAD_CONCURRENCY", err["message"])
            w.send({"type": "cancel", "id": "a"})
            error_of(self, w.recv(timeout=3), "Cancelled", id="a")
            run(w, "echo", 2, id="d")
            w.expect({"type": "result", "id": "d", "value": 2})

    def test_calls_do_not_count_toward_concurrency(self):
        # As the conformance case call_does_not_count_toward_concurrency, plus a sync run that
        # holds the only job thread: a call must not queue behind it.
        for job, params in [("sleep", {"ms": 30000}), ("sync_sleep", {"ms": 30000})]:
            with self.subTest(job=job), Worker(jobs_dir=TEST_JOBS if job == "sync_sleep" else FIXTURES) as w:
                w.expect({"type": "ready", "concurrency": 1})
                run(w, job, params, id="j1")
                time.sleep(0.1)
                w.send({"type": "call", "id": "c1", "job": "echo", "path": os.path.join(FIXTURES, "echo.py"),
                        "func": "handle", "args": ["x"]})
                w.expect({"type": "result", "id": "c1", "value": "x"}, timeout=3)
                run(w, "echo", 1, id="j2", path=os.path.join(FIXTURES, "echo.py"))
                error_of(self, w.recv(), "Busy", id="j2")
                w.send({"type": "cancel", "id": "j1"})
                error_of(self, w.recv(timeout=3), "Cancelled", id="j1")

    def test_an_answered_job_never_holds_its_slot(self):
        # The supervisor may send the next run the moment it reads an answer.
        with Worker() as w:
            w.ready()
            for i in range(300):
                run(w, "echo" if i % 2 else "fail", {"message": "m"}, id=str(i))
                self.assertIn(w.recv()["type"], ("result", "error"))
            run(w, "echo", "last", id="last")
            w.expect({"type": "result", "id": "last", "value": "last"})

    def test_a_duplicate_id_in_flight_is_a_protocol_error(self):
        with Worker() as w:
            w.ready()
            run(w, "sleep", {"ms": 30000}, id="a")
            run(w, "echo", 1, id="a")
            self.assertEqual(w.wait(), 2)
            self.assertIn("protocol error", w.stderr_text())


class Shutdown(unittest.TestCase):
    def test_sigterm_drains_refuses_new_jobs_then_exits_zero(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "sync_sleep", {"ms": 400}, id="a")
            time.sleep(0.1)
            w.signal(signal.SIGTERM)
            time.sleep(0.1)
            run(w, "sync_sleep", {"ms": 1}, id="b")
            error_of(self, w.recv(), "ShuttingDown", id="b")
            w.send({"type": "ping", "id": "p"})
            w.expect({"type": "pong", "id": "p"})
            w.expect({"type": "result", "id": "a", "value": "slept"})
            w.expect({"type": "ack", "id": "shutdown"})
            self.assertEqual(w.wait(), 0)

    def test_absurd_grace_and_deadline_values_are_survived(self):
        with Worker() as w:
            w.ready()
            run(w, "echo", 1, id="a", deadline=1e20)
            w.expect({"type": "result", "id": "a", "value": 1})
            run(w, "sleep", {"ms": 200}, id="b", deadline=1e20)
            w.send({"type": "shutdown", "grace_ms": 1e13})
            w.expect({"type": "result", "id": "b", "value": "slept"})
            w.expect({"type": "ack", "id": "shutdown"})
            self.assertEqual(w.wait(), 0)

    def test_sigterm_in_a_process_a_job_forked_does_not_stop_the_worker(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "forker", None)
            w.expect({"type": "result", "id": "j", "value": -signal.SIGTERM})
            run(w, "sub/nested", None, id="k")
            w.expect({"type": "result", "id": "k", "value": "nested"})
            w.nothing_for(0.2)

    def test_calls_still_reach_jobs_while_draining(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "sync_sleep", {"ms": 400}, id="a")
            w.send({"type": "shutdown", "grace_ms": 5000})
            w.send({"type": "call", "id": "c", "job": "calls", "func": "add", "args": [1, 2]})
            w.expect({"type": "result", "id": "c", "value": 3})
            run(w, "calls", None, id="b")
            error_of(self, w.recv(), "ShuttingDown", id="b")
            w.expect({"type": "result", "id": "a", "value": "slept"})
            w.expect({"type": "ack", "id": "shutdown"})
            self.assertEqual(w.wait(), 0)

    def test_sigterm_when_idle(self):
        with Worker() as w:
            w.ready()
            w.signal(signal.SIGTERM)
            w.expect({"type": "ack", "id": "shutdown"})
            self.assertEqual(w.wait(), 0)

    def test_shutdown_answers_for_a_job_that_ignores_cancellation(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "stubborn", {"s": 30})
            w.send({"type": "shutdown", "grace_ms": 100})
            run(w, "stubborn", {"s": 0}, id="late")
            error_of(self, w.recv(), "ShuttingDown", id="late")
            err = error_of(self, w.recv(timeout=5), "Cancelled")
            self.assertIn("did not stop", err["message"])
            w.expect({"type": "ack", "id": "shutdown"})
            self.assertEqual(w.wait(), 0)

    def test_shutdown_cancels_sync_jobs_after_the_grace(self):
        with Worker(env={"OFFLOAD_CONCURRENCY": "2"}, jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "sync_sleep", {"ms": 30000}, id="a")
            run(w, "async_wait", {"mode": "wait", "s": 30}, id="b")
            w.send({"type": "shutdown", "grace_ms": 0})
            frames = [w.recv(timeout=5), w.recv(timeout=5)]
            frames.sort(key=lambda f: f["id"])
            error_of(self, frames[0], "Cancelled", id="a")
            self.assertEqual(frames[1]["value"], {"cancelled": True, "reason": "shutdown", "again": True})
            w.expect({"type": "ack", "id": "shutdown"})
            self.assertEqual(w.wait(), 0)


class ChannelEnd(unittest.TestCase):
    def test_eof_ends_the_worker_at_once_even_with_a_spinning_thread(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "spin", None)
            time.sleep(0.2)
            w.close()
            start = time.monotonic()
            w.wait()
            self.assertLess(time.monotonic() - start, 1.0)


class Events(unittest.TestCase):
    def test_listeners_run_before_the_ack(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "listeners", None, id="load")  # loading the module registers its listeners
            w.expect({"type": "result", "id": "load", "value": {}})
            w.send({"type": "event", "name": "config", "data": {"level": "debug"}, "id": "e1"})
            w.expect({"type": "ack", "id": "e1"})
            w.send({"type": "event", "name": "slow", "data": 5, "id": "e2"})  # async: acked when done
            w.expect({"type": "ack", "id": "e2"})
            run(w, "listeners", None, id="after")
            w.expect({"type": "result", "id": "after", "value": {"config": {"level": "debug"}, "slow": 5}})

    def test_events_without_id_are_not_acked_and_failures_are_logged(self):
        with Worker(jobs_dir=TEST_JOBS) as w:
            w.ready()
            run(w, "listeners", None, id="load")
            w.recv()
            w.send({"type": "event", "name": "config", "data": 1})
            w.send({"type": "event", "name": "nobody-listens", "data": 1, "id": "e0"})
            w.expect({"type": "ack", "id": "e0"})
            w.send({"type": "event", "name": "broken", "id": "e1"})
            w.expect({"type": "ack", "id": "e1"})
            w.send({"type": "event", "name": "relay", "data": [1], "id": "e2"})
            w.expect({"type": "event", "name": "relayed", "data": [1], "receiver": "task"})
            w.expect({"type": "ack", "id": "e2"})
            w.close()
            w.wait()
            self.assertIn("listener failed on purpose", w.stderr_text())


class ProtocolErrors(unittest.TestCase):
    BAD = [
        (b'"a string"\n', "not an object"),
        (b"{}\n", "no 'type'"),
        (b'{"type":5}\n', "must be a string"),
        (b'{"type":"run","id":"\xff"}\n', "UTF-8"),
        (b'{"type":"run","job":"echo"}\n', "without 'id'"),
        (b'{"type":"run","id":"x"}\n', "neither 'job' nor 'path'"),
        (b'{"type":"run","id":"","job":"echo"}\n', "1 to 256 bytes"),
        (encode({"type": "ping", "id": "x" * 257}), "1 to 256 bytes"),
        (b'{"type":"run","id":"x","job":"echo","deadline":"soon"}\n', "must be a number"),
        (b'{"type":"call","id":"x","job":"calls"}\n', "without 'func'"),
        (b'{"type":"cancel"}\n', "without 'id'"),
        (b'{"cmd":"run","jobPath":"echo"}\n', "without 'mid'"),
        (b"not json\n", "not valid JSON"),
        (b'{"type":"run","id":"x","job":"echo","params":NaN}\n', "NaN is not JSON"),
        (b'{"type":"ping","id":"\\udcff"}\n', "not valid Unicode"),
    ]

    def test_malformed_frames_exit_2_with_an_explanation(self):
        workers = [(Worker(), raw, hint) for raw, hint in self.BAD]  # start them all, then check
        for w, raw, hint in workers:
            with self.subTest(frame=raw), w:
                w.ready()
                w.send_raw(raw)
                self.assertEqual(w.wait(), 2)
                self.assertIn("offload worker: protocol error: ", w.stderr_text())
                self.assertIn(hint, w.stderr_text())

    def test_blank_lines_and_unknown_fields_are_fine(self):
        with Worker() as w:
            w.ready()
            w.send_raw(b"\n   \n\t\r\n")
            w.send({"type": "run", "id": "j", "job": "echo", "params": 1, "future_field": {"x": 1}})
            w.expect({"type": "result", "id": "j", "value": 1})
            w.send({"type": "result", "id": "j", "value": 1})  # worker-bound types: unknown here
            w.send({"type": "ping", "id": "p"})
            w.expect({"type": "pong", "id": "p"})

    def test_an_endless_line_is_cut_at_the_limit_with_bounded_memory(self):
        limit = 8 * 1024 * 1024
        with Worker(env={"OFFLOAD_MAX_FRAME": str(limit)}) as w:
            w.ready()
            sent = [0]
            chunk = b"x" * (1 << 20)

            def flood():  # an endless line: no newline, ever, until the worker hangs up
                while sent[0] < 1 << 30 and w.send_raw(chunk):
                    sent[0] += len(chunk)

            t = threading.Thread(target=flood, daemon=True)
            t.start()
            self.assertEqual(w.wait(), 2)
            t.join(10)
            self.assertIn("longer than OFFLOAD_MAX_FRAME", w.stderr_text())
            self.assertLess(sent[0], limit + 4 * (1 << 20), "the worker stopped reading near the limit")
            max_rss_mib = w.rusage.ru_maxrss / 1024
            self.assertLess(max_rss_mib, 60, "peak RSS %.0f MiB for an 8 MiB limit" % max_rss_mib)


class Startup(unittest.TestCase):
    def test_bad_environment_exits_2_before_ready(self):
        for env, hint in [({"OFFLOAD_PROTOCOL": "0"}, "protocol"), ({"OFFLOAD_CONCURRENCY": "0"}, "OFFLOAD_CONCURRENCY"),
                          ({"OFFLOAD_MAX_FRAME": "big"}, "OFFLOAD_MAX_FRAME"),
                          ({"OFFLOAD_CHANNEL_FD": "57"}, "not open")]:
            with self.subTest(env=env), Worker(env=env) as w:
                self.assertEqual(w.wait(), 2)
                self.assertIn(hint, w.stderr_text())
                self.assertTrue(w.stderr_text().startswith("offload worker: "))

    def test_a_newer_supervisor_gets_protocol_1(self):
        with Worker(env={"OFFLOAD_PROTOCOL": "7"}) as w:
            frame = w.expect({"type": "ready", "protocol": 1})
            self.assertEqual(frame["pid"], w.pid)
            self.assertTrue(frame["runtime"].startswith("python/3."))
            self.assertEqual(set(frame["capabilities"]), {"cancel", "call", "progress", "events", "shutdown", "ping", "fds"})


if __name__ == "__main__":
    unittest.main()
