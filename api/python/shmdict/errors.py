"""shmdict's exceptions.

Every exception the package raises for a failed table operation derives from
shmdict.Error, and also from the built-in exception a Python programmer would expect,
so that either can be caught:

    exception              also a               C code             raised when
    KeyNotFoundError       KeyError             SHMDICT_ENOTFOUND  key absent
    TableNotFoundError     FileNotFoundError    SHMDICT_ENOTFOUND  no table, no create
    TableExistsError       FileExistsError      SHMDICT_EEXISTS    exclusive create
    TableFullError         ValueError           SHMDICT_EFULL      key's buckets full
    TooBigError            ValueError           SHMDICT_ETOOBIG    over the maxima
    VersionMismatchError   -                    SHMDICT_EVERSION   compare_and_swap
    CounterTypeError       TypeError            SHMDICT_ETYPE      not a counter
    InvalidArgumentError   ValueError           SHMDICT_EINVAL     bad options
    BadFileError           -                    SHMDICT_EBADFILE   not a valid table
    PermissionDeniedError  PermissionError      SHMDICT_EPERM      read-only, mode, owner
    ShmdictOSError         OSError              SHMDICT_EIO        other OS error
    ClosedError            ValueError           -                  used after close()
    UnsupportedError       NotImplementedError  -                  library too old

The message of each holds shmdict's own explanation (shmdict_last_error()), e.g.
"value of 17 bytes is over the table's maximum of 16".
"""

from __future__ import annotations

import errno as _errno
from typing import Any, Dict, Optional, Type


class Error(Exception):
    """Base class of shmdict's exceptions. `code` is the C API's SHMDICT_E* code (a
    negative int), or None for errors found on the Python side."""

    code: Optional[int] = None


class KeyNotFoundError(Error, KeyError):
    """The key is absent. Its only argument is the key, as for dict's KeyError."""

    code = -1  # SHMDICT_ENOTFOUND


class TableNotFoundError(Error, FileNotFoundError):
    """No table file at the path, and create was not asked for."""


class TableExistsError(Error, FileExistsError):
    """The table file exists and exclusive creation was asked for."""


class TableFullError(Error, ValueError):
    """Both candidate buckets of the key are full (the table holds `capacity` keys at
    least) and the table's eviction policy is "none", or 1024 processes already write
    to the table. Also a ValueError: the value cannot be stored, which is what
    caches such as cachetools' @cached catch and skip."""


class TooBigError(Error, ValueError):
    """The key or the serialized value is over the table's maximum size."""


class VersionMismatchError(Error):
    """compare_and_swap: the key's current version is not the expected one."""


class CounterTypeError(Error, TypeError):
    """increment on a key whose value is not an 8-byte counter."""


class InvalidArgumentError(Error, ValueError):
    """Bad options (out of range, or unlike those of the existing table) or argument."""


class BadFileError(Error):
    """The file is not a shmdict table, has an unsupported version, or is corrupt or
    truncated; or the path is a symbolic link or not a regular file."""


class PermissionDeniedError(Error, PermissionError):
    """A write through a read-only SharedDict; access to the file denied; or the file is
    group/world-writable or owned by another user (see allow_group)."""


class ShmdictOSError(Error, OSError):
    """Another operating-system error; `errno` holds its number when known."""


class ClosedError(Error, ValueError):
    """The SharedDict was closed."""


class UnsupportedError(Error, NotImplementedError):
    """The loaded libshmdict.so lacks a function this call needs."""


_BY_CODE: Dict[int, Type[Error]] = {
    -1: KeyNotFoundError,
    -2: TableExistsError,
    -3: TableFullError,
    -4: TooBigError,
    -6: VersionMismatchError,
    -7: CounterTypeError,
    -8: InvalidArgumentError,
    -9: BadFileError,
    -10: PermissionDeniedError,
    -12: ShmdictOSError,
}

_ERRNO_OF: Dict[Type[Error], int] = {
    TableNotFoundError: _errno.ENOENT,
    TableExistsError: _errno.EEXIST,
    PermissionDeniedError: _errno.EACCES,
}


def make(code: int, message: str, cls: Optional[Type[Error]] = None,
         os_errno: int = 0) -> Error:
    """The exception for C code `code` with `message`. `cls` overrides the class."""
    kind = _BY_CODE.get(code, Error) if cls is None else cls
    number = os_errno if kind is ShmdictOSError else _ERRNO_OF.get(kind, 0)
    # OSError(errno, message) sets e.errno and e.strerror.
    e = kind(number, message) if number and issubclass(kind, OSError) else kind(message)
    e.code = code
    return e


# _from_engine's `key` when the error names no key.
_NO_KEY: Any = object()


def _from_engine(code: int, message: str, os_errno: int = 0, key: Any = _NO_KEY,
                 cls: Optional[Type[Error]] = None) -> Error:
    """The exception for a failed engine call, as both engine cores raise it (the
    native one calls this from C): KeyNotFoundError(key) for an absent key, else the
    class of `code` (or `cls`) with the engine's message, naming the key if given."""
    if code == -1 and key is not _NO_KEY and cls is None:
        e = KeyNotFoundError(key)
        e.code = code
        return e
    if key is not _NO_KEY:
        message = "%s (key %r)" % (message, key)
    return make(code, message, cls, os_errno)
