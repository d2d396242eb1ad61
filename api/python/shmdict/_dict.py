"""SharedDict: a dict that processes share through a shmdict table.

Each call goes straight to libshmdict.so (ctypes): lookups take no lock and never
wait; writes lock only the key's buckets; nothing is cached on the Python side, so
every process sees every committed write at once.

Thread safety: a SharedDict may be used by any number of threads at once. close()
may be called while other threads still use it: the table is closed when the last
call in progress returns, and later calls raise ClosedError.
"""

from __future__ import annotations

import collections.abc
import ctypes
import functools
import math
import numbers
import os
import pickle
import time
from typing import (Any, Callable, Iterable, Iterator, ItemsView, KeysView, List,
                    Literal, MutableMapping, Optional, Tuple, Type, TypeVar, Union,
                    ValuesView, cast, overload)

from . import _clib
from . import errors
from .errors import ClosedError, KeyNotFoundError, UnsupportedError
from .serializers import PickleSerializer, Serializer, SerializerArg
from .serializers import resolve as _resolve_serializer

__all__ = ["SharedDict", "unlink", "KeyArg", "PathArg"]

# The type of the keys a SharedDict's iteration returns: str, or bytes with
# key_type=bytes.
K = TypeVar("K", str, bytes)
_T = TypeVar("_T")
_Self = TypeVar("_Self", bound="SharedDict[Any]")
# What a key may be given as: str (stored as UTF-8) or bytes-like.
KeyArg = Union[str, bytes, bytearray, memoryview]
# A table's name (in /dev/shm) or path.
PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

DEFAULT_CAPACITY = 1024
DEFAULT_MAX_KEY_SIZE = 256
DEFAULT_MAX_VALUE_SIZE = 4096

# The eviction policies SharedDict(eviction=...) takes, and their C codes.
EVICTION_POLICIES = {"none": _clib.EVICT_NONE, "lrs": _clib.EVICT_LRS}
# The longest ttl, in milliseconds, that a write accepts (shmdict_set and
# shmdict_touch: 2^42 ms, about 139 years).
MAX_TTL_MS = 1 << 42

_MISSING: Any = object()
_get = _clib.get
_put = _clib.put
_size_t = _clib.size_t
_SIZES = _clib._SIZES
_ENOTFOUND = _clib.ENOTFOUND
_string_at = ctypes.string_at

# A thread's value buffer starts this large and grows to the largest value read;
# buffers above _KEEP_LIMIT are used once and dropped.
_FIRST_BUFFER = 4096
_KEEP_LIMIT = 1 << 20
# get_many reads at most this many keys per C call (bounds its buffer memory).
_MANY_CHUNK = 512
# wait_for_change waits in slices this long so that signals (Ctrl-C) and close() from
# another thread are noticed between them.
_WAIT_SLICE_MS = 100


class _Handle(ctypes.c_void_p):
    """The C handle (shmdict *), closed when the last reference goes: each call holds
    a reference while it runs, so closing never frees a handle in use."""

    def __del__(self, _close: Any = _clib.close) -> None:
        _close(self)


class _Scratch:
    """A value buffer with its out-parameters, owned by one thread at a time."""

    __slots__ = ("buf", "cap", "c_cap", "length", "length_ptr", "version", "version_ptr")

    def __init__(self, cap: int) -> None:
        # Any: typeshed types a slice of a c_char array as a list; it is bytes.
        self.buf: Any = ctypes.create_string_buffer(cap)
        self.cap = cap
        self.c_cap = ctypes.c_size_t(cap)
        self.length = ctypes.c_size_t()
        self.length_ptr = ctypes.pointer(self.length)
        self.version = ctypes.c_uint64()
        self.version_ptr = ctypes.pointer(self.version)


# Free value buffers. A call takes one (pop) and gives it back (append) after
# copying the value out; both are atomic under the GIL, so every thread, and a
# signal handler that reads while its thread was between the two, has a buffer of
# its own. The pool holds as many buffers as calls ever ran at once.
_pool: List[_Scratch] = []
_take = _pool.pop
_give = _pool.append


def _error(code: int, key: object = _MISSING,
           cls: Optional[Type[errors.Error]] = None) -> errors.Error:
    """The exception for C code `code`, with shmdict's message for this thread."""
    message = _clib.last_error().decode("utf-8", "replace") or \
        _clib.strerror(code).decode("utf-8", "replace")
    if code == _clib.ENOTFOUND and key is not _MISSING and cls is None:
        e = KeyNotFoundError(key)
        e.code = code
        return e
    if key is not _MISSING:
        message = "%s (key %r)" % (message, key)
    return errors.make(code, message, cls, ctypes.get_errno())


@overload
def _read(h: _Handle, kb: bytes,
          want_version: Literal[False] = ...) -> Optional[bytes]: ...


@overload
def _read(h: _Handle, kb: bytes,
          want_version: Literal[True]) -> Tuple[Optional[bytes], int]: ...


def _read(h: _Handle, kb: bytes, want_version: bool = False) -> Any:
    """The stored bytes of key `kb` (with its version if want_version), or None when
    the key is absent. Raises for other errors."""
    try:
        s = _take()
    except IndexError:
        s = _Scratch(_FIRST_BUFFER)
    n = len(kb)
    c_n = _SIZES[n] if n < 4096 else _size_t(n)
    while True:
        rc = _get(h, kb, c_n, s.buf, s.c_cap, s.length_ptr, s.version_ptr)
        if rc == 0:
            data = s.buf[:s.length.value]
            version = s.version.value
            break
        if rc == _clib.EBUFFER:
            # The value is longer than the buffer: retry with the size it needs (it
            # may have grown again by then: loop).
            needed = s.length.value
            s = _Scratch(max(needed, 2 * s.cap) if needed <= _KEEP_LIMIT else needed)
            continue
        if s.cap <= _KEEP_LIMIT:
            _give(s)
        if rc == _clib.ENOTFOUND:
            return (None, 0) if want_version else None
        raise _error(rc, kb)
    if s.cap <= _KEEP_LIMIT:
        _give(s)
    return (data, version) if want_version else data


def _key_bytes(key: object) -> bytes:
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


def _value_bytes(data: object, serializer: Serializer) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError("%r.dumps returned %s, not bytes" % (serializer, type(data).__name__))


def _check_uint(name: str, value: object, bits: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("%s must be an int, not %s" % (name, type(value).__name__))
    if not 0 <= value < (1 << bits):
        raise errors.make(_clib.EINVAL, "%s must be in [0, 2**%d), got %d"
                          % (name, bits, value))


def _timeout_seconds(timeout: object) -> Optional[float]:
    """wait_for_change's timeout as a float number of seconds >= 0, or None for no
    limit (None or math.inf). Raises TypeError for a non-number, ValueError for NaN
    or a negative number."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
        raise TypeError("timeout must be a number of seconds or None, not %s"
                        % type(timeout).__name__)
    seconds = float(timeout)
    if math.isnan(seconds) or seconds < 0:
        raise ValueError("timeout must be a number of seconds >= 0, or None or "
                         "math.inf to wait without limit; got %r" % (timeout,))
    return None if math.isinf(seconds) else seconds


def _ttl_ms(ttl: object) -> int:
    """A ttl in seconds (an int or a float > 0, or None) as the C API's milliseconds:
    0 for None (never expires), else rounded up to a whole millisecond, after
    rounding to the microsecond so that 0.1 is 100 ms and not 101; any positive ttl
    is at least 1 ms (0 would mean "never"). TypeError for a non-number or a bool,
    ValueError for 0, a negative number, NaN, an infinity, or over MAX_TTL_MS."""
    if ttl is None:
        return 0
    if type(ttl) is float and 0 < ttl < 4398046511.0:  # the common case, in range
        us = round(ttl * 1_000_000)
        return -(-us // 1000) if us else 1
    if isinstance(ttl, bool) or not isinstance(ttl, numbers.Real):
        raise TypeError("ttl must be a number of seconds (int or float) or None, "
                        "not %s" % type(ttl).__name__)
    if isinstance(ttl, int):
        ms = ttl * 1000
    else:
        seconds = float(ttl)
        if math.isnan(seconds) or math.isinf(seconds):
            raise ValueError("ttl must be a finite number of seconds > 0, or None for "
                             "no expiry; got %r" % (ttl,))
        us = round(seconds * 1_000_000)
        ms = -(-us // 1000) if seconds > 0 else 0
        if seconds > 0 and ms == 0:
            ms = 1
    if ms <= 0:
        raise ValueError("ttl must be a number of seconds > 0, or None for no expiry; "
                         "got %r (delete the key to expire it now)" % (ttl,))
    if ms > MAX_TTL_MS:
        raise ValueError("ttl of %r seconds is over the maximum of %d ms; use None for "
                         "no expiry" % (ttl, MAX_TTL_MS))
    return ms


def _eviction_code(eviction: object) -> int:
    """The C code of an eviction policy name; None is 0 (the default on creation;
    any policy when opening an existing table)."""
    if eviction is None:
        return 0
    if isinstance(eviction, str) and eviction in EVICTION_POLICIES:
        return EVICTION_POLICIES[eviction]
    raise errors.make(_clib.EINVAL, "eviction must be one of %s, or None; got %r"
                      % (", ".join(repr(p) for p in EVICTION_POLICIES), eviction))


def _unsupported(name: str) -> UnsupportedError:
    return UnsupportedError("%s is missing from %s, which predates per-key expiry: "
                            "rebuild libshmdict.so" % (name, _clib.path))


def _need(function: Optional[Any], name: str) -> Any:
    """function, or UnsupportedError when the loaded library lacks `name`."""
    if function is None:
        raise _unsupported(name)
    return function


def _path_of(name_or_path: PathArg) -> str:
    path = os.fspath(name_or_path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        raise TypeError("name_or_path must be str, bytes or os.PathLike")
    if not path:
        raise errors.make(_clib.EINVAL, "empty table name")
    if "\0" in path:
        # The C library takes a NUL-terminated string: it would see only the part
        # before the NUL, and open or remove another table than the one named.
        raise errors.make(_clib.EINVAL, "table name %r contains a NUL character" % path)
    return path


def _display_path(path: str) -> str:
    return path if "/" in path else "/dev/shm/" + path


def unlink(name_or_path: PathArg, missing_ok: bool = False) -> None:
    """Removes the table file (after checking that it is a shmdict table). Open
    SharedDicts on it keep working; the memory is freed when the last one closes.
    Raises TableNotFoundError (unless missing_ok), BadFileError (not a shmdict file:
    left in place), PermissionDeniedError."""
    path = _path_of(name_or_path)
    rc = _clib.unlink(os.fsencode(path))
    if rc == _clib.ENOTFOUND and missing_ok:
        return
    if rc:
        raise _error(rc, cls=errors.TableNotFoundError if rc == _clib.ENOTFOUND else None)


class SharedDict(MutableMapping[K, Any]):
    """A dictionary shared by the processes of one machine, stored in a shmdict table.

    SharedDict(name_or_path, *, capacity=None, max_key_size=None, max_value_size=None,
               eviction=None, serializer=None, create=True, read_only=False,
               exclusive=False, allow_group=False, mode=0o600, key_type=str)

    Every argument after name_or_path is keyword-only. For type checkers a
    SharedDict is a MutableMapping[K, Any] with K the key_type (SharedDict[str] or
    SharedDict[bytes]); keys may be given as any KeyArg (str or bytes-like).

    name_or_path: a name without "/" is a file in /dev/shm; anything else is a path.
    capacity, max_key_size, max_value_size: used when the table is created (defaults
        1024 keys, 256-byte keys, 4096-byte serialized values): the file takes about
        2.5 x capacity x (max_key_size + max_value_size + 30) bytes, allocated up
        front (docs/python.md has the exact rule).
        When the table exists, the ones given must match it (InvalidArgumentError).
    eviction: what a write does when the new key's buckets are full, chosen when the
        table is created: "none" (the default: TableFullError) or "lrs" (least
        recently stored: it replaces an expired entry of those buckets, else the one
        written longest ago). Opening an existing table, "lrs" must match it
        (InvalidArgumentError); None or "none" accepts the table's policy.
    serializer: None or "pickle" (default), "json", "bytes", or any object with
        dumps(value) -> bytes and loads(bytes) -> value.
    create: create the table if absent. read_only: map it read-only (never creates;
        writes raise PermissionDeniedError). exclusive: with create, fail with
        TableExistsError if the table exists. allow_group: accept a group-writable
        file or one owned by another user of the group. mode: file mode on creation.
    key_type: str (default) or bytes: the type of the keys iteration returns.
        Keys may be given as str (stored as UTF-8) or bytes either way.

    Trust: every process that can write the table file is trusted by all that have
    it open. Share a table only with processes you trust to that degree:
    - A process that truncates the file or overwrites it in place (open(path, "w"),
      cp onto it) shrinks it under the others' mappings: they die of SIGBUS on their
      next access past the new end. (unlink, or a rename over it, harms no one.)
    - The default pickle serializer runs code chosen by anyone who can write the
      table. Where writers are not trusted, use serializer="json" or "bytes".

    Scans (iteration, keys/values/items, len, clear, popitem) are weakly consistent:
    a key present throughout is seen once; one added or removed meanwhile may or may
    not be; one erased and inserted again meanwhile may be seen twice.
    """

    @overload
    def __init__(self: SharedDict[str], name_or_path: PathArg, *,
                 capacity: Optional[int] = ..., max_key_size: Optional[int] = ...,
                 max_value_size: Optional[int] = ..., eviction: Optional[str] = ...,
                 serializer: SerializerArg = ...,
                 create: bool = ..., read_only: bool = ..., exclusive: bool = ...,
                 allow_group: bool = ..., mode: int = ...,
                 key_type: Type[str] = ...) -> None: ...

    @overload
    def __init__(self: SharedDict[bytes], name_or_path: PathArg, *,
                 capacity: Optional[int] = ..., max_key_size: Optional[int] = ...,
                 max_value_size: Optional[int] = ..., eviction: Optional[str] = ...,
                 serializer: SerializerArg = ...,
                 create: bool = ..., read_only: bool = ..., exclusive: bool = ...,
                 allow_group: bool = ..., mode: int = ...,
                 key_type: Type[bytes]) -> None: ...

    def __init__(self, name_or_path: PathArg, *, capacity: Optional[int] = None,
                 max_key_size: Optional[int] = None, max_value_size: Optional[int] = None,
                 eviction: Optional[str] = None,
                 serializer: SerializerArg = None, create: bool = True,
                 read_only: bool = False, exclusive: bool = False,
                 allow_group: bool = False, mode: int = 0o600,
                 key_type: Union[Type[str], Type[bytes]] = str) -> None:
        self._setup(name_or_path, capacity=capacity, max_key_size=max_key_size,
                    max_value_size=max_value_size, serializer=serializer, create=create,
                    read_only=read_only, exclusive=exclusive, allow_group=allow_group,
                    mode=mode, key_type=key_type, match_existing=True, eviction=eviction)

    def _setup(self, name_or_path: PathArg, *, capacity: Optional[int],
               max_key_size: Optional[int], max_value_size: Optional[int],
               serializer: SerializerArg, create: bool, read_only: bool, exclusive: bool,
               allow_group: bool, mode: int, key_type: Union[Type[str], Type[bytes]],
               match_existing: bool, eviction: Optional[str] = None) -> None:
        """The constructor's work. match_existing=False: options given for creation
        need not match an existing table (shmdict.compat)."""
        self._handle: Optional[_Handle] = None
        self._path = _path_of(name_or_path)
        self._serializer = _resolve_serializer(serializer)
        self._dumps: Callable[[Any], Union[bytes, bytearray, memoryview]] = \
            self._serializer.dumps
        self._loads: Callable[[bytes], Any] = self._serializer.loads
        if type(self._serializer) is PickleSerializer:
            # The same calls, one Python frame fewer on the hot path.
            self._dumps = functools.partial(pickle.dumps,
                                            protocol=self._serializer.protocol)
            self._loads = pickle.loads
        if key_type not in (str, bytes):
            raise TypeError("key_type must be str or bytes, not %r" % (key_type,))
        self._key_type: Union[Type[str], Type[bytes]] = key_type
        self._read_only = bool(read_only)
        _check_uint("capacity", capacity, 64, allow_none=True)
        _check_uint("max_key_size", max_key_size, 32, allow_none=True)
        _check_uint("max_value_size", max_value_size, 32, allow_none=True)
        _check_uint("mode", mode, 32)
        policy = _eviction_code(eviction)
        if policy and _clib.set_ is None:
            # An older library would ignore the field and create a table that never
            # evicts.
            raise _unsupported("shmdict_set (for eviction=%r)" % eviction)
        self._handle = self._open(create, exclusive, allow_group, mode, capacity,
                                  max_key_size, max_value_size, match_existing, policy)

    def _open(self, create: bool, exclusive: bool, allow_group: bool, mode: int,
              capacity: Optional[int], max_key_size: Optional[int],
              max_value_size: Optional[int], match_existing: bool,
              eviction: int) -> _Handle:
        path = os.fsencode(self._path)
        extra = _clib.ALLOW_GROUP if allow_group else 0
        if self._read_only:
            return self._open_once(path, _clib.READONLY | extra, None)
        if not create:
            return self._open_once(path, extra, None)
        full = _clib.Options(
            capacity=DEFAULT_CAPACITY if capacity is None else capacity,
            max_key_size=DEFAULT_MAX_KEY_SIZE if max_key_size is None else max_key_size,
            max_value_size=(DEFAULT_MAX_VALUE_SIZE if max_value_size is None
                            else max_value_size),
            mode=mode, eviction=eviction)
        if exclusive:
            return self._open_once(path, _clib.CREATE | _clib.EXCL | extra, full)
        # The options given explicitly must match an existing table; the defaults
        # apply only to a table created here.
        given = _clib.Options(capacity=capacity or 0, max_key_size=max_key_size or 0,
                              max_value_size=max_value_size or 0, mode=mode,
                              eviction=eviction)
        check = match_existing and (capacity or max_key_size or max_value_size or
                                    eviction)
        for _ in range(100):
            h, rc = self._try_open(path, _clib.CREATE | _clib.EXCL | extra, full)
            if rc != _clib.EEXISTS:
                break
            if check:
                h, rc = self._try_open(path, _clib.CREATE | extra, given)
            else:
                h, rc = self._try_open(path, extra, None)
            if rc != _clib.ENOTFOUND:  # else removed meanwhile: create it again
                break
        if rc:
            raise self._open_error(rc)
        return cast(_Handle, h)  # rc == 0: a handle

    def _try_open(self, path: bytes, flags: int,
                  options: Optional[_clib.Options]) -> Tuple[Optional[_Handle], int]:
        out = ctypes.c_void_p()
        rc = _clib.open_(path, flags, ctypes.byref(options) if options else None,
                         ctypes.addressof(out))
        return (_Handle(out.value) if rc == 0 else None), rc

    def _open_once(self, path: bytes, flags: int,
                   options: Optional[_clib.Options]) -> _Handle:
        h, rc = self._try_open(path, flags, options)
        if rc:
            raise self._open_error(rc)
        return cast(_Handle, h)  # rc == 0: a handle

    def _open_error(self, rc: int) -> errors.Error:
        cls = errors.TableNotFoundError if rc == _clib.ENOTFOUND else None
        return _error(rc, cls=cls)

    # --- handle ----------------------------------------------------------------

    def _live(self) -> _Handle:
        h = self._handle
        if h is None:
            raise ClosedError("operation on a closed SharedDict (%s)"
                              % _display_path(self._path))
        return h

    def close(self) -> None:
        """Closes this SharedDict (the table stays). Idempotent. Calls in progress in
        other threads finish first; later calls raise ClosedError."""
        self._handle = None

    @property
    def closed(self) -> bool:
        return self._handle is None

    def unlink(self, missing_ok: bool = False) -> None:
        """Removes the table file; see shmdict.unlink. This SharedDict stays usable
        until closed; processes opening the name afterwards get a new table."""
        unlink(self._path, missing_ok)

    def __enter__(self: _Self) -> _Self:
        self._live()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def path(self) -> str:
        """The table's file path."""
        return _display_path(self._path)

    @property
    def serializer(self) -> Serializer:
        return self._serializer

    @property
    def read_only(self) -> bool:
        return self._read_only

    def __repr__(self) -> str:
        return "<shmdict.SharedDict %s serializer=%r%s%s>" % (
            self.path, self._serializer, " read-only" if self._read_only else "",
            " closed" if self._handle is None else "")

    def __reduce__(self) -> Tuple[Callable[..., SharedDict[Any]], Tuple[Any, ...]]:
        # Pickling (e.g. to a multiprocessing child started with "spawn") sends the
        # path and settings; the receiver opens the existing table.
        return (_reopen, (self._path, self._serializer, self._read_only, self._key_type))

    # --- mapping ---------------------------------------------------------------

    def __getitem__(self, key: KeyArg) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyNotFoundError(key)
        return value

    def get(self, key: KeyArg, default: Any = None) -> Any:
        """The value of key, or default if absent."""
        h = self._handle
        if h is None:
            h = self._live()  # raises ClosedError
        kb = key.encode() if type(key) is str and key.isascii() else _key_bytes(key)
        # The common case of _read, inlined.
        try:
            s = _take()
        except IndexError:
            s = _Scratch(_FIRST_BUFFER)
        n = len(kb)
        rc = _get(h, kb, _SIZES[n] if n < 4096 else _size_t(n), s.buf, s.c_cap,
                  s.length_ptr, None)
        if rc == 0:
            data = s.buf[:s.length.value]
            _give(s)
            return self._loads(data)
        _give(s)
        if rc == _ENOTFOUND:
            return default
        # A value longer than the buffer, or an error.
        data = _read(h, kb)
        if data is None:
            return default
        return self._loads(data)

    def __setitem__(self, key: KeyArg, value: Any) -> None:
        h = self._handle
        if h is None:
            h = self._live()  # raises ClosedError
        kb = key.encode() if type(key) is str and key.isascii() else _key_bytes(key)
        vb = self._dumps(value)
        if type(vb) is not bytes:
            vb = _value_bytes(vb, self._serializer)
        n = len(kb)
        m = len(vb)
        rc = _put(h, kb, _SIZES[n] if n < 4096 else _size_t(n), vb,
                  _SIZES[m] if m < 4096 else _size_t(m), None)
        if rc:
            raise _error(rc, key)

    def set(self, key: KeyArg, value: Any, ttl: Optional[float] = None) -> int:
        """d[key] = value, returning the key's new version. ttl: the key expires
        after that many seconds (an int or a float > 0, rounded up to the
        millisecond); None (and d[key] = value): never, whatever expiry the key had.
        An expired key is absent for every operation. Raises TypeError/ValueError for
        a bad ttl (0 or less, NaN, an infinity, a bool), and what d[key] = value
        raises (TooBigError, TableFullError, ...)."""
        h = self._live()
        kb = _key_bytes(key)
        ms = _ttl_ms(ttl)
        vb = self._dump(value)
        version = ctypes.c_uint64()
        if ms:
            rc = _need(_clib.set_, "shmdict_set")(h, kb, len(kb), vb, len(vb), ms, 0,
                                                  ctypes.addressof(version))
        else:
            rc = _put(h, kb, _size_t(len(kb)), vb, _size_t(len(vb)),
                      ctypes.pointer(version))
        if rc:
            raise _error(rc, key)
        return version.value

    def add(self, key: KeyArg, value: Any, ttl: Optional[float] = None) -> bool:
        """Sets key to value (with ttl as in set) only if the key is absent or
        expired; returns whether it did. Atomic: of several processes adding one key,
        exactly one gets True."""
        h = self._live()
        kb = _key_bytes(key)
        ms = _ttl_ms(ttl)
        vb = self._dump(value)
        if _clib.set_ is None and not ms:  # a library without expiry
            rc = _clib.insert(h, kb, len(kb), vb, len(vb), None)
        else:
            rc = _need(_clib.set_, "shmdict_set")(h, kb, len(kb), vb, len(vb), ms,
                                                  _clib.IF_ABSENT, None)
        if rc == _clib.EEXISTS:
            return False
        if rc:
            raise _error(rc, key)
        return True

    def touch(self, key: KeyArg, ttl: Optional[float] = None) -> bool:
        """Gives the key a new expiry, keeping its value: ttl seconds from now (as in
        set), or None: never. Returns False, changing nothing, if the key is absent
        or expired. The key's version grows, as with any write."""
        h = self._live()
        kb = _key_bytes(key)
        ms = _ttl_ms(ttl)
        rc = _need(_clib.touch, "shmdict_touch")(h, kb, len(kb), ms, None)
        if rc == _ENOTFOUND:
            return False
        if rc:
            raise _error(rc, key)
        return True

    def ttl(self, key: KeyArg) -> Optional[float]:
        """The seconds left before the key expires (a float, at least 0.001), or
        None if it never expires. Raises KeyNotFoundError if the key is absent or
        expired."""
        h = self._live()
        kb = _key_bytes(key)
        out = ctypes.c_int64()
        rc = _need(_clib.ttl, "shmdict_ttl")(h, kb, len(kb), ctypes.addressof(out))
        if rc:
            raise _error(rc, key)
        return None if out.value < 0 else out.value / 1000

    def __delitem__(self, key: KeyArg) -> None:
        h = self._live()
        kb = _key_bytes(key)
        rc = _clib.erase(h, kb, len(kb))
        if rc:
            raise _error(rc, key)

    def __contains__(self, key: object) -> bool:
        h = self._live()
        try:
            kb = _key_bytes(key)
        except TypeError:
            return False
        return _read(h, kb) is not None

    def __len__(self) -> int:
        """The number of entries: a scan of the whole table (O(capacity)), weakly
        consistent while other processes write. Raises what the scan reports:
        BadFileError where it skipped corrupt slots."""
        h = self._live()
        n = ctypes.c_uint64()
        rc = _clib.count(h, ctypes.addressof(n))
        if rc:
            raise _error(rc)
        return n.value

    def __iter__(self) -> Iterator[K]:
        """The keys, from a weakly consistent snapshot taken at the first next():
        a key present throughout is seen once; one added or removed meanwhile may or
        may not be; one erased and inserted again meanwhile may be seen twice."""
        decode = self._decode_key
        for kb, _, _ in self._snapshot(False):
            yield decode(kb)

    def keys(self) -> KeysView[K]:
        return collections.abc.KeysView(self)

    def items(self) -> ItemsView[K, Any]:
        """A view whose iteration reads each (key, value) pair atomically."""
        return _ItemsView(self)

    def values(self) -> ValuesView[Any]:
        return _ValuesView(self)

    def pop(self, key: KeyArg, default: Any = _MISSING) -> Any:
        """Removes key and returns its value (default if absent; KeyError without a
        default). A read, then an erase: a write by another process between the two
        is erased and not returned."""
        h = self._live()
        kb = _key_bytes(key)
        while True:
            data = _read(h, kb)
            if data is None:
                if default is _MISSING:
                    raise KeyNotFoundError(key)
                return default
            rc = _clib.erase(h, kb, len(kb))
            if rc == 0:
                return self._loads(data)
            if rc != _clib.ENOTFOUND:  # else erased by another process: look again
                raise _error(rc, key)

    def popitem(self) -> Tuple[K, Any]:
        """Removes and returns some (key, value) pair; KeyError if empty."""
        while True:
            first = self._snapshot(False, limit=1)
            if not first:
                raise KeyNotFoundError("popitem(): SharedDict is empty")
            key = self._decode_key(first[0][0])
            try:
                return key, self.pop(key)
            except KeyError:
                continue  # removed by another process meanwhile

    def setdefault(self, key: KeyArg, default: Any = None) -> Any:
        """The value of key; if absent, inserts default and returns it. Atomic: when
        several processes race, one value wins and all get it."""
        h = self._live()
        kb = _key_bytes(key)
        vb = None
        while True:
            data = _read(h, kb)
            if data is not None:
                return self._loads(data)
            if vb is None:
                vb = self._dump(default)
            rc = _clib.insert(h, kb, len(kb), vb, len(vb), None)
            if rc == 0:
                return default
            if rc != _clib.EEXISTS:  # else inserted by another process: read it
                raise _error(rc, key)

    def clear(self) -> None:
        """Removes every key: one call to shmdict_clear, which erases bucket by
        bucket (O(capacity), no per-key work in Python). Not atomic as a whole: a
        write made meanwhile to a bucket already cleared stays. Versions keep
        growing: a key written again afterwards gets a version above any it had.
        (With a library older than shmdict_clear: erases every key present when a
        scan passes it, weakly consistent.)"""
        h = self._live()
        if _clib.clear is not None:
            rc = _clib.clear(h)
            if rc:
                raise _error(rc)
            return
        for kb, _, _ in self._snapshot(False):
            rc = _clib.erase(h, kb, len(kb))
            if rc and rc != _clib.ENOTFOUND:
                raise _error(rc, kb)

    # --- shmdict's own operations ----------------------------------------------

    def sweep(self) -> int:
        """Erases the expired entries and returns how many it erased. Never needed
        for correctness (expired keys read as absent, and writers reuse their
        slots); it frees the slots ahead of writers and makes the table's
        statistics exact. A scan of the
        whole table: O(capacity)."""
        h = self._live()
        erased = ctypes.c_uint64()
        rc = _need(_clib.sweep, "shmdict_sweep")(h, ctypes.addressof(erased))
        if rc:
            raise _error(rc)
        return erased.value

    def version(self, key: KeyArg) -> int:
        """The key's version: it grows with every write of the key, never repeats, and
        is 0 when the key is absent."""
        return _read(self._live(), _key_bytes(key), True)[1]

    def get_with_version(self, key: KeyArg, default: Any = None) -> Tuple[Any, int]:
        """(value, version) read atomically; (default, 0) if absent. The version is
        what compare_and_swap and wait_for_change take."""
        data, version = _read(self._live(), _key_bytes(key), True)
        if data is None:
            return default, 0
        return self._loads(data), version

    def compare_and_swap(self, key: KeyArg, expected_version: int, value: Any) -> int:
        """Writes value only if the key's version is expected_version (0: only if
        the key is absent). Returns the new version; raises VersionMismatchError if
        the version differs."""
        h = self._live()
        kb = _key_bytes(key)
        _check_uint("expected_version", expected_version, 64)
        vb = self._dump(value)
        version = ctypes.c_uint64()
        rc = _clib.compare_and_swap(h, kb, len(kb), expected_version, vb, len(vb),
                                    ctypes.addressof(version))
        if rc:
            raise _error(rc, key)
        return version.value

    def increment(self, key: KeyArg, delta: int = 1, *, if_present: bool = False) -> int:
        """Atomically adds delta to the key's counter (0 if absent) and returns the
        new value. Counters are 8-byte little-endian signed integers stored raw, not
        through the serializer: read them with counter(key) (get returns them as
        serializer.loads(8 raw bytes), which is only meaningful with "bytes").
        Wraps around at 64 bits. A counter keeps its expiry; an absent or expired one
        starts from 0 with none. if_present=True: raises KeyNotFoundError, writing
        nothing, if the key is absent or expired. Raises CounterTypeError if the
        value is not 8 bytes."""
        h = self._live()
        kb = _key_bytes(key)
        if not isinstance(delta, int) or isinstance(delta, bool):
            raise TypeError("delta must be an int, not %s" % type(delta).__name__)
        if not -(1 << 63) <= delta < (1 << 63):
            raise errors.make(_clib.EINVAL, "delta %d is out of the int64 range" % delta)
        out = ctypes.c_int64()
        if if_present:
            rc = _need(_clib.fetch_add_flags, "shmdict_fetch_add_flags")(
                h, kb, len(kb), delta, _clib.IF_PRESENT, ctypes.addressof(out), None)
        else:
            rc = _clib.fetch_add(h, kb, len(kb), delta, ctypes.addressof(out))
        if rc:
            raise _error(rc, key)
        return out.value

    @overload
    def counter(self, key: KeyArg) -> int: ...

    @overload
    def counter(self, key: KeyArg, default: _T) -> Union[int, _T]: ...

    def counter(self, key: KeyArg, default: Any = 0) -> Any:
        """The value of the counter at key (see increment), or default if absent."""
        data = _read(self._live(), _key_bytes(key))
        if data is None:
            return default
        if len(data) != 8:
            raise errors.make(_clib.ETYPE, "the value of %r is %d bytes long, not an "
                              "8-byte counter" % (key, len(data)))
        return int.from_bytes(data, "little", signed=True)

    def wait_for_change(self, key: KeyArg, version: int,
                        timeout: Optional[float] = None) -> bool:
        """Blocks until the key's version differs from `version` (0: until the key
        exists), or `timeout` seconds pass: a number >= 0, or None or math.inf for
        no limit (TypeError for a non-number, ValueError for NaN or a negative
        number). Returns True on a change (at once if it already differs), False on
        timeout. Woken by writes from any process within microseconds (a read-only
        SharedDict polls every millisecond). Ctrl-C and close() from another thread
        interrupt it within 0.1 s."""
        kb = _key_bytes(key)
        _check_uint("version", version, 64)
        seconds = _timeout_seconds(timeout)
        deadline = None if seconds is None else time.monotonic() + seconds
        while True:
            h = self._live()
            if deadline is None:
                ms = _WAIT_SLICE_MS
            else:
                remaining = deadline - time.monotonic()
                ms = int(min(_WAIT_SLICE_MS, max(0.0, remaining * 1000 + 0.999)))
            rc = _clib.wait(h, kb, len(kb), version, ms)
            del h
            if rc == 0:
                return True
            if rc != _clib.ETIMEOUT:
                raise _error(rc, key)
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def get_many(self, keys: Iterable[KeyArg], default: Any = None) -> List[Any]:
        """[d.get(k, default) for k in keys], in fewer C calls: faster per key on
        large tables (the keys' memory misses overlap). Each value is read
        atomically; the list is not one snapshot."""
        h = self._live()
        kbs = [_key_bytes(k) for k in keys]
        out = []
        cap = 256
        for start in range(0, len(kbs), _MANY_CHUNK):
            chunk = kbs[start:start + _MANY_CHUNK]
            n = len(chunk)
            step = cap  # this chunk's buffer size per key (cap may grow below)
            buf = ctypes.create_string_buffer(n * step)
            base = ctypes.addressof(buf)
            key_ptrs = (ctypes.c_char_p * n)(*chunk)
            key_lens = (ctypes.c_size_t * n)(*map(len, chunk))
            values = (ctypes.c_void_p * n)(*range(base, base + n * step, step))
            caps = (ctypes.c_size_t * n)(*([step] * n))
            lens = (ctypes.c_size_t * n)()
            results = (ctypes.c_int * n)()
            rc = _clib.get_many(h, n, key_ptrs, key_lens, values, caps, lens, None,
                                results)
            if rc:
                raise _error(rc)
            loads = self._loads
            for i in range(n):
                r = results[i]
                if r == 0:
                    out.append(loads(_string_at(base + i * step, lens[i])))
                elif r == _clib.ENOTFOUND:
                    out.append(default)
                elif r == _clib.EBUFFER:
                    # Longer than this chunk's buffers: read it alone, and give the
                    # next chunks larger buffers.
                    cap = min(max(cap, 1 << (lens[i] - 1).bit_length()), 1 << 16)
                    data = _read(h, chunk[i])
                    out.append(default if data is None else loads(data))
                else:
                    raise errors.make(r, "get_many: %s (key %r)" % (
                        _clib.strerror(r).decode(), chunk[i]))
        return out

    # --- helpers ---------------------------------------------------------------

    def _dump(self, value: Any) -> bytes:
        vb = self._dumps(value)
        if type(vb) is not bytes:
            vb = _value_bytes(vb, self._serializer)
        return vb

    def _decode_key(self, kb: bytes) -> Any:
        """The key as this SharedDict's key_type (K)."""
        if self._key_type is bytes:
            return kb
        return kb.decode("utf-8", "surrogateescape")

    def _snapshot(self, with_values: bool,
                  limit: Optional[int] = None) -> List[Tuple[bytes, bytes, int]]:
        """[(key bytes, value bytes (b"" unless with_values), version)] of the
        entries, weakly consistent, at most `limit` of them. Raises, with nothing
        returned, when shmdict_foreach fails: BadFileError where it skipped corrupt
        slots (after visiting the readable ones)."""
        h = self._live()
        if _clib.foreach is None:
            raise UnsupportedError(
                "iterating a SharedDict needs shmdict_foreach, which %s lacks: "
                "rebuild libshmdict.so" % _clib.path)
        found: List[Tuple[bytes, bytes, int]] = []
        failure: List[BaseException] = []

        def visit(ctx: Any, key: Any, key_len: int, value: Any, value_len: int,
                  version: int) -> int:
            try:
                found.append((_string_at(key, key_len) if key_len else b"",
                              _string_at(value, value_len)
                              if with_values and value_len else b"",
                              version))
                return 1 if limit is not None and len(found) >= limit else 0
            except BaseException as e:  # re-raised after shmdict_foreach returns
                failure.append(e)
                return 1

        rc = _clib.foreach(h, _clib.FOREACH_FN(visit), None)
        if failure:
            raise failure[0]
        if rc:
            raise _error(rc)
        return found


class _ItemsView(ItemsView[Any, Any]):
    """items(): each pair read atomically."""

    def __init__(self, d: SharedDict[Any]) -> None:
        super().__init__(d)
        self._dict = d

    def __iter__(self) -> Iterator[Tuple[Any, Any]]:
        d = self._dict
        loads = d._loads
        for kb, vb, _ in d._snapshot(True):
            yield d._decode_key(kb), loads(vb)


class _ValuesView(ValuesView[Any]):
    def __init__(self, d: SharedDict[Any]) -> None:
        super().__init__(d)
        self._dict = d

    def __iter__(self) -> Iterator[Any]:
        d = self._dict
        loads = d._loads
        for _, vb, _ in d._snapshot(True):
            yield loads(vb)


def _reopen(path: str, serializer: Serializer, read_only: bool,
            key_type: Union[Type[str], Type[bytes]]) -> SharedDict[Any]:
    return SharedDict(path, serializer=serializer, create=False, read_only=read_only,
                      key_type=key_type)
