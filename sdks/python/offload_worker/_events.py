"""Listeners for events the supervisor broadcasts to the worker."""

import threading

_lock = threading.Lock()
_listeners = {}  # name -> tuple of functions (replaced, never mutated: readers need no lock)


def on_event(name, fn=None):
    """Call fn(data) when the supervisor broadcasts the event `name` to this worker.

    Usable as a decorator: ``@on_event("config-changed")``. Listeners run in registration order
    on the runner's reader thread, so keep them short; an ``async def`` listener runs on the
    job loop instead. When the event carries an id, the worker answers ``ack`` after every
    listener (async ones included) has finished. A listener that raises is logged to stderr.
    Listeners defined in a job module are dropped when that module is reloaded.
    """
    if not isinstance(name, str) or not name:
        raise TypeError("an event name must be a non-empty string, not %r" % (name,))
    if fn is None:
        return lambda f: on_event(name, f)
    if not callable(fn):
        raise TypeError("an event listener must be callable, not %r" % (fn,))
    with _lock:
        _listeners[name] = _listeners.get(name, ()) + (fn,)
    return fn


def off_event(name, fn=None):
    """Remove one listener of `name` (or all of them when fn is None). True if any was removed."""
    with _lock:
        old = _listeners.get(name, ())
        new = () if fn is None else tuple(f for f in old if f is not fn)
        _set(name, new)
        return len(new) != len(old)


def listeners(name):
    return _listeners.get(name, ())


def forget_module(module_name):
    """Drop the listeners defined in the module `module_name` (before it is reloaded)."""
    with _lock:
        for name, fns in list(_listeners.items()):
            _set(name, tuple(f for f in fns if getattr(f, "__module__", None) != module_name))


def _set(name, fns):
    if fns:
        _listeners[name] = fns
    else:
        _listeners.pop(name, None)
