"""Test support: the runner as a real child process on a real AF_UNIX stream socketpair.

The child is started the way a supervisor starts it: ``python3 -m offload_worker`` with
PYTHONPATH=sdks/python, its end of the socketpair as fd 3 (close-on-exec cleared), stdin
/dev/null, stdout/stderr to files, and its own process group.
"""

import fcntl
import json
import os
import select
import signal
import socket
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.dirname(HERE)
ROOT = os.path.dirname(os.path.dirname(SDK))
FIXTURES = os.path.join(ROOT, "tests", "conformance", "jobs")
CASES = os.path.join(ROOT, "tests", "conformance", "cases.json")
TEST_JOBS = os.path.join(HERE, "jobs")

HANG_GUARD = 10.0  # seconds: how long any single wait may take before the test fails


def encode(obj):
    return (json.dumps(obj, separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")


def spawn(env=None, jobs_dir=FIXTURES, stdout=None, stderr=None):
    """Start the runner; returns (pid, the supervisor's socket end)."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    # Put the child's end well above 3 so DUP2 to 3 is a real dup2 (which clears close-on-exec).
    child_fd = fcntl.fcntl(child.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
    child.close()
    full_env = dict(os.environ)
    full_env.update({
        "PYTHONPATH": SDK,
        "OFFLOAD_CHANNEL_FD": "3",
        "OFFLOAD_PROTOCOL": "1",
        "OFFLOAD_MAX_FRAME": "16777216",
        "OFFLOAD_JOBS_DIR": jobs_dir,
        "OFFLOAD_CONCURRENCY": "1",
    })
    full_env.update(env or {})
    full_env = {k: v for k, v in full_env.items() if v is not None}
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)]
    for fd, target in ((1, stdout), (2, stderr)):
        if target is not None:
            actions.append((os.POSIX_SPAWN_DUP2, target.fileno(), fd))
    actions.append((os.POSIX_SPAWN_DUP2, child_fd, 3))
    try:
        pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "offload_worker"], full_env,
                             file_actions=actions, setpgroup=0)
    finally:
        os.close(child_fd)
    return pid, parent


class Worker:
    """One runner process and the supervisor's side of its channel."""

    def __init__(self, env=None, jobs_dir=FIXTURES):
        self.stdout = tempfile.TemporaryFile()
        self.stderr = tempfile.TemporaryFile()
        self.pid, self.sock = spawn(env, jobs_dir, self.stdout, self.stderr)
        self.sock.setblocking(False)
        self.returncode = None
        self.rusage = None
        self._buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill()

    # -- channel ---------------------------------------------------------------------------

    def send(self, obj):
        self.send_raw(encode(obj))

    def send_raw(self, data):
        """Write all of data; quietly stops if the worker has closed its end."""
        view = memoryview(data)
        end = time.monotonic() + HANG_GUARD
        while view:
            try:
                view = view[self.sock.send(view):]
            except BlockingIOError:
                if time.monotonic() > end:
                    raise AssertionError("the worker stopped reading")
                select.select([], [self.sock], [], 0.05)
            except (BrokenPipeError, ConnectionResetError):
                return False
        return True

    def recv(self, timeout=HANG_GUARD):
        """The next frame as a dict; AssertionError if none arrives within timeout."""
        end = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = end - time.monotonic()
            if remaining <= 0 or not select.select([self.sock], [], [], remaining)[0]:
                raise AssertionError("no frame within %.1fs; stderr:\n%s" % (timeout, self.stderr_text()))
            try:
                data = self.sock.recv(1 << 16)
            except ConnectionResetError:
                data = b""
            if not data:
                raise AssertionError("the channel closed (exit %r); stderr:\n%s" % (self.poll(), self.stderr_text()))
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line.decode("utf-8"))

    def expect(self, expected, timeout=HANG_GUARD):
        frame = self.recv(timeout)
        if not matches(expected, frame):
            raise AssertionError("expected %s\n     got %s" % (json.dumps(expected), json.dumps(frame)))
        return frame

    def ready(self):
        return self.expect({"type": "ready"})

    def nothing_for(self, seconds):
        """Assert that no frame arrives for `seconds`."""
        if b"\n" in self._buf or select.select([self.sock], [], [], seconds)[0]:
            raise AssertionError("unexpected frame: %r" % (self._buf + self.sock.recv(1 << 16)))

    def close(self):
        self.sock.close()

    # -- process ---------------------------------------------------------------------------

    def poll(self):
        if self.returncode is None:
            pid, status, rusage = os.wait4(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
                self.rusage = rusage
        return self.returncode

    def wait(self, timeout=HANG_GUARD):
        end = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > end:
                raise AssertionError("the worker did not exit within %.1fs; stderr:\n%s" % (timeout, self.stderr_text()))
            time.sleep(0.005)
        return self.returncode

    def signal(self, signum):
        os.kill(self.pid, signum)

    def kill(self):
        if self.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.wait()
        for f in (self.sock, self.stdout, self.stderr):
            f.close()

    def stderr_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    def stdout_text(self):
        self.stdout.seek(0)
        return self.stdout.read().decode("utf-8", "replace")


def matches(expected, actual):
    """cases.json matching: objects partially; "$any", "$string", "$number" placeholders."""
    if expected == "$any":
        return True
    if expected == "$string":
        return isinstance(actual, str) and actual != ""
    if expected == "$number":
        return isinstance(actual, (int, float)) and not isinstance(actual, bool)
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(expected) == len(actual)
                and all(matches(e, a) for e, a in zip(expected, actual)))
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    return type(expected) is type(actual) and expected == actual or (
        isinstance(expected, (int, float)) and isinstance(actual, (int, float)) and expected == actual)
