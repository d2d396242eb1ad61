"""How values become bytes in the table, and back.

A serializer is any object with two methods:

    dumps(value) -> bytes      (bytearray and memoryview are accepted too)
    loads(data: bytes) -> value

the contract of the shared_memory_dict package's serializers, except that shmdict
serializes each value on its own, not the whole dictionary. Keys are not serialized:
str keys are stored as their UTF-8 bytes, bytes keys as they are. `Serializer` is
that contract as a typing.Protocol, for type checkers.
"""

from __future__ import annotations

import json
import pickle
from typing import Any, Dict, Protocol, Type, Union

__all__ = ["Serializer", "PickleSerializer", "JSONSerializer", "BytesSerializer",
           "resolve"]


class Serializer(Protocol):
    """What SharedDict needs of a serializer: dumps and loads."""

    def dumps(self, value: Any) -> Union[bytes, bytearray, memoryview]: ...

    def loads(self, data: bytes) -> Any: ...


# What SharedDict's serializer argument accepts: see resolve.
SerializerArg = Union[None, str, Serializer, Type[Serializer]]


class PickleSerializer:
    """Any picklable value (the default). Unpickling runs code chosen by whoever wrote
    the value: share a table only with processes you trust (shmdict refuses files that
    other users can write unless allow_group=True), else use JSON or bytes."""

    def __init__(self, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        self.protocol = protocol

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, self.protocol)

    def loads(self, data: bytes) -> Any:
        return pickle.loads(data)

    def __repr__(self) -> str:
        return "PickleSerializer(protocol=%d)" % self.protocol


class JSONSerializer:
    """JSON values (dict, list, str, int, float, bool, None), UTF-8 encoded: readable
    from programs in other languages. Tuples come back as lists, dict keys as str.
    NaN and infinities are not JSON: storing them raises ValueError."""

    def dumps(self, value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode()

    def loads(self, data: bytes) -> Any:
        return json.loads(data)

    def __repr__(self) -> str:
        return "JSONSerializer()"


class BytesSerializer:
    """Raw bytes, stored as given; values come back as bytes. The serializer to use
    when other programs (C, C++) read or write the table, or for counters (increment)
    read back with get: those are 8-byte little-endian signed integers."""

    def dumps(self, value: Any) -> Union[bytes, bytearray, memoryview]:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return value
        raise TypeError("BytesSerializer stores bytes, bytearray or memoryview values, "
                        "not %s" % type(value).__name__)

    def loads(self, data: bytes) -> bytes:
        return data

    def __repr__(self) -> str:
        return "BytesSerializer()"


_BY_NAME: Dict[str, Type[Serializer]] = {
    "pickle": PickleSerializer,
    "json": JSONSerializer,
    "bytes": BytesSerializer,
}


def resolve(serializer: SerializerArg) -> Serializer:
    """The serializer object for `serializer`: None (pickle), a name ("pickle", "json",
    "bytes"), an object with dumps and loads, or a class whose instances have them."""
    if serializer is None:
        return PickleSerializer()
    if isinstance(serializer, str):
        try:
            return _BY_NAME[serializer]()
        except KeyError:
            raise ValueError("unknown serializer %r: use one of %s, or an object with "
                             "dumps and loads methods"
                             % (serializer, ", ".join(sorted(_BY_NAME)))) from None
    if isinstance(serializer, type):
        serializer = serializer()
    if not (callable(getattr(serializer, "dumps", None))
            and callable(getattr(serializer, "loads", None))):
        raise TypeError("a serializer needs callable dumps(value) -> bytes and "
                        "loads(bytes) -> value methods; %r has not" % (serializer,))
    return serializer
