"""What SharedDict and both engine cores share: how keys and values become bytes."""

from __future__ import annotations

from typing import Any, Union

from .serializers import Serializer

# What a key may be given as: str (stored as UTF-8) or bytes-like.
KeyArg = Union[str, bytes, bytearray, memoryview]
# A default that no caller can pass.
MISSING: Any = object()


def key_bytes(key: object) -> bytes:
    """The stored form of a key: str as UTF-8 (lone surrogates from undecodable bytes,
    as os.fsdecode makes them, back to those bytes), bytes as is."""
    if isinstance(key, str):
        try:
            return key.encode()
        except UnicodeEncodeError:
            return key.encode("utf-8", "surrogateescape")
    if isinstance(key, bytes):
        return bytes(key)
    if isinstance(key, (bytearray, memoryview)):
        return bytes(key)
    raise TypeError("shmdict keys are str or bytes, not %s" % type(key).__name__)


def value_bytes(data: object, serializer: Serializer) -> bytes:
    """What serializer.dumps returned, as bytes; TypeError if it is not bytes-like."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError("%r.dumps returned %s, not bytes" % (serializer, type(data).__name__))
