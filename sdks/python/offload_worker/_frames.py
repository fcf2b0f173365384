"""The checks of an inbound frame's fields: each names the frame's kind and the field, and
raises ProtocolError (the runner answers it on the channel, docs/protocol.md)."""

import json

from ._channel import ProtocolError

MAX_ID_BYTES = 256


def _excerpt(msg):
    text = json.dumps(msg, ensure_ascii=False)
    return text if len(text) <= 80 else text[:80] + "..."


def _field(msg, key, kind, types, type_name, required):
    value = msg.get(key)
    if value is None:
        if required:
            raise ProtocolError("%s frame without %r" % (kind, key))
        return None
    if not isinstance(value, types) or isinstance(value, bool):
        raise ProtocolError("%s frame: %r must be %s, not %s" % (kind, key, type_name, _excerpt(value)))
    return value


def _str(msg, key, kind, required=False):
    return _field(msg, key, kind, str, "a string", required)


def _number(msg, key, kind):
    return _field(msg, key, kind, (int, float), "a number", False)


def _array(msg, key, kind):
    return _field(msg, key, kind, list, "an array", False)


def _id(msg, key, kind, required=True):
    value = _str(msg, key, kind, required)
    if value is not None:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate escape: it could never be sent back
            raise ProtocolError("%s frame: %r is not valid Unicode" % (kind, key))
        if not 1 <= size <= MAX_ID_BYTES:
            raise ProtocolError("%s frame: %r must be 1 to %d bytes long" % (kind, key, MAX_ID_BYTES))
    return value
