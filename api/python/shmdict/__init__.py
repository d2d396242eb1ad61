"""shmdict for Python: a dict shared by the processes of one machine.

    import shmdict
    d = shmdict.SharedDict("prices", capacity=100_000, max_key_size=32,
                           max_value_size=256)       # /dev/shm/prices
    d["EURUSD"] = 1.0842                             # from any process
    d["EURUSD"]                                      # lock-free, about a microsecond
    d.increment("hits")                              # atomic across processes

Calls go to the engine through the extension module shmdict._native (C++, built by
`pip install` or Bazel), or, where it is not built, through ctypes over libshmdict.so
(found through $SHMDICT_LIBRARY, next to this package, in Bazel's runfiles, or by the
system loader: see shmdict/_clib.py). `shmdict.backend` says which: "native" or
"ctypes"; SHMDICT_FORCE_CTYPES=1 asks for ctypes. Guide: docs/python.md.
"""

from . import _engine
from ._dict import KeyArg, PathArg, SharedDict, unlink
from .compat import SharedMemoryDict
from .errors import (
    BadFileError,
    ClosedError,
    CounterTypeError,
    Error,
    InvalidArgumentError,
    KeyNotFoundError,
    PermissionDeniedError,
    ShmdictOSError,
    TableExistsError,
    TableFullError,
    TableNotFoundError,
    TooBigError,
    UnsupportedError,
    VersionMismatchError,
)
from .serializers import BytesSerializer, JSONSerializer, PickleSerializer, Serializer

# How SharedDict reaches the engine: "native" (the extension module) or "ctypes".
backend: str = _engine.name
# The file of the engine in use: the extension module, or the libshmdict.so loaded.
library_path: str = _engine.path

__all__ = [
    "SharedDict", "SharedMemoryDict", "unlink", "backend", "library_path",
    "PickleSerializer", "JSONSerializer", "BytesSerializer",
    # For type annotations: the Serializer protocol, what a key and a table name may be.
    "Serializer", "KeyArg", "PathArg",
    "Error", "KeyNotFoundError", "TableNotFoundError", "TableExistsError",
    "TableFullError", "TooBigError", "VersionMismatchError", "CounterTypeError",
    "InvalidArgumentError", "BadFileError", "PermissionDeniedError", "ShmdictOSError",
    "ClosedError", "UnsupportedError",
]
