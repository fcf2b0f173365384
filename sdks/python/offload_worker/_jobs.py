"""Finding and loading job files: a job name relative to OFFLOAD_JOBS_DIR, or an absolute path."""

import importlib.util
import os
import re
import sys
import threading

from . import _events
from ._errors import JobNotFound

_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")
_LEGACY_EXTENSIONS = (".py", ".js", ".mjs", ".cjs")


def job_file(jobs_dir, name):
    """The file of the job `name` ("images/resize" -> <jobs_dir>/images/resize.py).

    Raises JobNotFound for names that could leave the folder: empty, absolute, with an empty,
    "." or ".." segment, a backslash, NUL or another control character.
    """
    if not isinstance(name, str) or not name:
        raise JobNotFound("a job name must be a non-empty string, not %r" % (name,))
    if _UNSAFE.search(name):
        raise JobNotFound("job name %r contains a control character or a backslash" % name)
    if name.startswith("/"):
        raise JobNotFound("job name %r is absolute; job names are relative to the jobs folder" % name)
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise JobNotFound("job name %r has an empty, '.' or '..' segment; it must stay inside the jobs folder" % name)
    if not jobs_dir:
        raise JobNotFound("cannot look up job %r: OFFLOAD_JOBS_DIR is not set" % name)
    if not parts[-1].endswith(".py"):
        parts[-1] += ".py"
    return os.path.join(jobs_dir, *parts)


def legacy_job_name(job_path):
    """ee-core's jobPath as a job name: the stem of an absolute path, else the path without a
    "./" prefix and a .py/.js-family extension (like the Rust codec)."""
    name = job_path[2:] if job_path.startswith("./") else job_path
    if name.startswith("/"):
        name = name.rsplit("/", 1)[-1]
    for ext in _LEGACY_EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


class Loader:
    """Loads job modules once per path and keeps them; reload() replaces one."""

    def __init__(self, jobs_dir):
        self.jobs_dir = jobs_dir
        self._modules = {}  # path -> module
        self._names = {}  # path -> module name, stable across reloads
        self._lock = threading.RLock()

    def resolve(self, job=None, path=None):
        """The file to load: `path` when given (absolute, validated by the supervisor), else
        the file of the job name `job` in the jobs folder."""
        if path is not None:
            if not os.path.isabs(path):
                raise JobNotFound("path %r is not absolute" % path)
            return path
        return job_file(self.jobs_dir, job)

    def cached(self, path):
        return self._modules.get(path)

    def load(self, path):
        """The module of the job file `path`, executing the file on first use."""
        module = self._modules.get(path)
        if module is not None:
            return module
        with self._lock:
            module = self._modules.get(path)
            if module is None:
                module = self._execute(path)
                self._modules[path] = module
            return module

    def reload(self, path):
        """Forget the module of `path` and load the file again. The old module's unload(), if
        it defines one, is called first, and the event listeners it registered are dropped.
        If unload() raises, the exception propagates and the next run loads the file afresh."""
        with self._lock:
            old = self._modules.pop(path, None)
            if old is not None:
                sys.modules.pop(old.__name__, None)
                _events.forget_module(old.__name__)
                unload = old.__dict__.get("unload")
                if callable(unload):
                    unload()
            return self.load(path)

    def loaded(self):
        """The (path, module) pairs of every job module loaded, in load order. Read without the
        lock: a job stuck in its import holds it, and a shutdown must not wait for that."""
        return list(self._modules.copy().items())

    def _execute(self, path):
        if not os.path.isfile(path):
            if os.path.isfile(path + ".py"):  # ee-core style path without extension
                path += ".py"
            else:
                raise JobNotFound("no job file %s" % path)
        name = self._names.get(path)
        if name is None:
            stem = re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
            name = self._names[path] = "offload_job_%d_%s" % (len(self._names), stem)
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None:
            raise JobNotFound("%s is not a Python file (.py)" % path)
        module = importlib.util.module_from_spec(spec)
        # Compile the source ourselves rather than spec.loader.exec_module(): a cached .pyc is
        # keyed on the file's mtime in whole seconds and its size, so a file rewritten within
        # the same second would reload stale code. This also writes no __pycache__ in the jobs folder.
        with open(path, "rb") as f:
            code = compile(f.read(), path, "exec", dont_inherit=True)
        sys.modules[name] = module
        try:
            exec(code, module.__dict__)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        return module


_default = None
_default_lock = threading.Lock()


def default_loader():
    """The process's loader (the runner's; else one for $OFFLOAD_JOBS_DIR)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Loader(os.environ.get("OFFLOAD_JOBS_DIR"))
        return _default


def set_default_loader(loader):
    global _default
    with _default_lock:
        _default = loader


def reload(job):
    """Reload a job module: `job` is an absolute path or a job name. Calls the old module's
    unload() first, drops its event listeners, and returns the new module."""
    loader = default_loader()
    path = job if os.path.isabs(job) else loader.resolve(job=job)
    return loader.reload(path)
