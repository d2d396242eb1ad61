"""shmdict for Python: a dict shared by the processes of one machine.

    import shmdict
    d = shmdict.SharedDict("prices", capacity=100_000, max_key_size=32,
                           max_value_size=256)       # /dev/shm/prices
    d["EURUSD"] = 1.0842                             # from any process
    d["EURUSD"]                                      # lock-free, about a microsecond
    d.increment("hits")                              # atomic across processes

A thin ctypes layer over libshmdict.so (api/shmdict_c.h): no compiler needed. The
library is found through $SHMDICT_LIBRARY, next to this package, in Bazel's runfiles,
or by the system loader (see shmdict/_clib.py). Guide: docs/python.md.
"""

from . import _clib
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

# The path of the libshmdict.so in use.
library_path: str = _clib.path

__all__ = [
    "SharedDict", "SharedMemoryDict", "unlink", "library_path",
    "PickleSerializer", "JSONSerializer", "BytesSerializer",
    # For type annotations: the Serializer protocol, what a key and a table name may be.
    "Serializer", "KeyArg", "PathArg",
    "Error", "KeyNotFoundError", "TableNotFoundError", "TableExistsError",
    "TableFullError", "TooBigError", "VersionMismatchError", "CounterTypeError",
    "InvalidArgumentError", "BadFileError", "PermissionDeniedError", "ShmdictOSError",
    "ClosedError", "UnsupportedError",
]
