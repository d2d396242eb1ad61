"""SharedDict: a dict that processes share through a shmdict table.

Each call goes straight to the engine, through the core SharedDict inherits from
(shmdict/_engine.py: the extension module shmdict._native, or ctypes over
libshmdict.so where it is not built): lookups take no lock and never wait; writes
lock only the key's buckets; nothing is cached on the Python side, so every process
sees every committed write at once. The hot methods (get, d[k], d[k] = v, del d[k],
k in d, get_many) are the core's; everything else is here, once, over the core's
_core_* primitives (shmdict/_ctcore.py documents them).

Thread safety: a SharedDict may be used by any number of threads at once. close()
may be called while other threads still use it: the table is closed when the last
call in progress returns, and later calls raise ClosedError.
"""

from __future__ import annotations

import collections.abc
import functools
import math
import numbers
import os
import pickle
import time
from typing import (TYPE_CHECKING, Any, Callable, Iterator, ItemsView, KeysView,
                    MutableMapping, Optional, Tuple, Type, TypeVar, Union, ValuesView,
                    overload)

from . import _common, _engine
from . import errors
from ._common import MISSING as _MISSING
from ._common import key_bytes as _key_bytes
from ._common import value_bytes as _value_bytes
from .errors import ClosedError, KeyNotFoundError
from .serializers import BytesSerializer, PickleSerializer, Serializer, SerializerArg
from .serializers import resolve as _resolve_serializer

if TYPE_CHECKING:
    # Type checkers see the ctypes core, the reference for both cores' signatures.
    from ._ctcore import Core as _Core
else:
    _Core = _engine.Core

__all__ = ["SharedDict", "unlink", "KeyArg", "PathArg"]

# The type of the keys a SharedDict's iteration returns: str, or bytes with
# key_type=bytes.
K = TypeVar("K", str, bytes)
_T = TypeVar("_T")
_Self = TypeVar("_Self", bound="SharedDict[Any]")
# What a key may be given as: str (stored as UTF-8) or bytes-like.
KeyArg = _common.KeyArg
# A table's name (in /dev/shm) or path.
PathArg = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

DEFAULT_CAPACITY = 1024
DEFAULT_MAX_KEY_SIZE = 256
DEFAULT_MAX_VALUE_SIZE = 4096

# The C API's codes and flags (api/shmdict_c.h), which both cores take.
_EINVAL = -8
_ETYPE = -7
_CREATE = 0x1
_EXCL = 0x2
_READONLY = 0x4
_ALLOW_GROUP = 0x8
_IF_ABSENT = 0x1

# The eviction policies SharedDict(eviction=...) takes, and their C codes.
EVICTION_POLICIES = {"none": 0, "lrs": 1}
# The longest ttl, in milliseconds, that a write accepts (shmdict_set and
# shmdict_touch: 2^42 ms, about 139 years).
MAX_TTL_MS = 1 << 42

# wait_for_change waits in slices this long so that signals (Ctrl-C) and close() from
# another thread are noticed between them.
_WAIT_SLICE_MS = 100

# How the native core serializes (_core_serializer's kind): through the serializer's
# methods, pickle called directly, or bytes stored as they are.
_KIND_GENERIC = 0
_KIND_PICKLE = 1
_KIND_BYTES = 2


def _check_uint(name: str, value: object, bits: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("%s must be an int, not %s" % (name, type(value).__name__))
    if not 0 <= value < (1 << bits):
        raise errors.make(_EINVAL, "%s must be in [0, 2**%d), got %d"
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
    raise errors.make(_EINVAL, "eviction must be one of %s, or None; got %r"
                      % (", ".join(repr(p) for p in EVICTION_POLICIES), eviction))


def _path_of(name_or_path: PathArg) -> str:
    path = os.fspath(name_or_path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str):
        raise TypeError("name_or_path must be str, bytes or os.PathLike")
    if not path:
        raise errors.make(_EINVAL, "empty table name")
    if "\0" in path:
        # The C library takes a NUL-terminated string: it would see only the part
        # before the NUL, and open or remove another table than the one named.
        raise errors.make(_EINVAL, "table name %r contains a NUL character" % path)
    return path


def _display_path(path: str) -> str:
    return path if "/" in path else "/dev/shm/" + path


def unlink(name_or_path: PathArg, missing_ok: bool = False) -> None:
    """Removes the table file (after checking that it is a shmdict table). Open
    SharedDicts on it keep working; the memory is freed when the last one closes.
    Raises TableNotFoundError (unless missing_ok), BadFileError (not a shmdict file:
    left in place), PermissionDeniedError."""
    path = _path_of(name_or_path)
    try:
        _engine.unlink(os.fsencode(path))
    except errors.TableNotFoundError:
        if not missing_ok:
            raise


class SharedDict(_Core, MutableMapping[K, Any]):
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
        self._path = _path_of(name_or_path)
        self._serializer = _resolve_serializer(serializer)
        self._dumps: Callable[[Any], Union[bytes, bytearray, memoryview]] = \
            self._serializer.dumps
        self._loads: Callable[[bytes], Any] = self._serializer.loads
        kind, protocol = _KIND_GENERIC, 0
        if type(self._serializer) is PickleSerializer:
            # The same calls, one Python frame fewer on the hot path.
            protocol = self._serializer.protocol
            self._dumps = functools.partial(pickle.dumps, protocol=protocol)
            self._loads = pickle.loads
            kind = _KIND_PICKLE
        elif type(self._serializer) is BytesSerializer:
            kind = _KIND_BYTES
        self._core_serializer(self._serializer, self._dumps, self._loads, kind, protocol)
        if key_type not in (str, bytes):
            raise TypeError("key_type must be str or bytes, not %r" % (key_type,))
        self._key_type: Union[Type[str], Type[bytes]] = key_type
        self._read_only = bool(read_only)
        _check_uint("capacity", capacity, 64, allow_none=True)
        _check_uint("max_key_size", max_key_size, 32, allow_none=True)
        _check_uint("max_value_size", max_value_size, 32, allow_none=True)
        _check_uint("mode", mode, 32)
        policy = _eviction_code(eviction)
        _engine.check_eviction_supported(policy, eviction)
        self._open(create, exclusive, allow_group, mode, capacity, max_key_size,
                   max_value_size, match_existing, policy)

    def _open(self, create: bool, exclusive: bool, allow_group: bool, mode: int,
              capacity: Optional[int], max_key_size: Optional[int],
              max_value_size: Optional[int], match_existing: bool,
              eviction: int) -> None:
        path = os.fsencode(self._path)
        extra = _ALLOW_GROUP if allow_group else 0
        if self._read_only:
            self._core_open(path, _READONLY | extra, None)
            return
        if not create:
            self._core_open(path, extra, None)
            return
        full = (DEFAULT_CAPACITY if capacity is None else capacity,
                DEFAULT_MAX_KEY_SIZE if max_key_size is None else max_key_size,
                DEFAULT_MAX_VALUE_SIZE if max_value_size is None else max_value_size,
                mode, eviction)
        if exclusive:
            self._core_open(path, _CREATE | _EXCL | extra, full)
            return
        # The options given explicitly must match an existing table; the defaults
        # apply only to a table created here.
        given = (capacity or 0, max_key_size or 0, max_value_size or 0, mode, eviction)
        check = match_existing and (capacity or max_key_size or max_value_size or
                                    eviction)
        last: Optional[errors.Error] = None
        for _ in range(100):
            try:
                self._core_open(path, _CREATE | _EXCL | extra, full)
                return
            except errors.TableExistsError:
                pass
            try:
                if check:
                    self._core_open(path, _CREATE | extra, given)
                else:
                    self._core_open(path, extra, None)
                return
            except errors.TableNotFoundError as e:
                last = e  # removed meanwhile: create it again
        # Created and removed by others a hundred times in a row: report the last.
        assert last is not None
        raise last

    # --- handle ----------------------------------------------------------------

    def _closed_error(self) -> errors.Error:
        """The exception for a call on this SharedDict once closed."""
        return ClosedError("operation on a closed SharedDict (%s)"
                           % _display_path(self._path))

    def _live(self) -> None:
        """Raises ClosedError if this SharedDict is closed."""
        if self.closed:
            raise self._closed_error()

    def close(self) -> None:
        """Closes this SharedDict (the table stays). Idempotent. Calls in progress in
        other threads finish first; later calls raise ClosedError."""
        self._core_close()

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
            " closed" if self.closed else "")

    def __reduce__(self) -> Tuple[Callable[..., SharedDict[Any]], Tuple[Any, ...]]:
        # Pickling (e.g. to a multiprocessing child started with "spawn") sends the
        # path and settings; the receiver opens the existing table.
        return (_reopen, (self._path, self._serializer, self._read_only, self._key_type))

    # --- mapping ---------------------------------------------------------------
    # get, d[key], d[key] = value, del d[key], key in d and get_many are the core's.

    def set(self, key: KeyArg, value: Any, ttl: Optional[float] = None) -> int:
        """d[key] = value, returning the key's new version. ttl: the key expires
        after that many seconds (an int or a float > 0, rounded up to the
        millisecond); None (and d[key] = value): never, whatever expiry the key had.
        An expired key is absent for every operation. Raises TypeError/ValueError for
        a bad ttl (0 or less, NaN, an infinity, a bool), and what d[key] = value
        raises (TooBigError, TableFullError, ...)."""
        self._live()
        kb = _key_bytes(key)
        ms = _ttl_ms(ttl)
        return self._core_set(kb, key, self._dump(value), ms, 0)

    def add(self, key: KeyArg, value: Any, ttl: Optional[float] = None) -> bool:
        """Sets key to value (with ttl as in set) only if the key is absent or
        expired; returns whether it did. Atomic: of several processes adding one key,
        exactly one gets True."""
        self._live()
        kb = _key_bytes(key)
        ms = _ttl_ms(ttl)
        return self._core_set(kb, key, self._dump(value), ms, _IF_ABSENT) != 0

    def touch(self, key: KeyArg, ttl: Optional[float] = None) -> bool:
        """Gives the key a new expiry, keeping its value: ttl seconds from now (as in
        set), or None: never. Returns False, changing nothing, if the key is absent
        or expired. The key's version grows, as with any write."""
        self._live()
        kb = _key_bytes(key)
        return self._core_touch(kb, key, _ttl_ms(ttl))

    def ttl(self, key: KeyArg) -> Optional[float]:
        """The seconds left before the key expires (a float, at least 0.001), or
        None if it never expires. Raises KeyNotFoundError if the key is absent or
        expired."""
        self._live()
        ms = self._core_ttl(_key_bytes(key), key)
        return None if ms < 0 else ms / 1000

    def __len__(self) -> int:
        """The number of entries: a scan of the whole table (O(capacity)), weakly
        consistent while other processes write. Raises what the scan reports:
        BadFileError where it skipped corrupt slots."""
        return self._core_count()

    def __iter__(self) -> Iterator[K]:
        """The keys, from a weakly consistent snapshot taken at the first next():
        a key present throughout is seen once; one added or removed meanwhile may or
        may not be; one erased and inserted again meanwhile may be seen twice."""
        decode = self._decode_key
        for kb, _, _ in self._core_snapshot(False, None):
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
        self._live()
        kb = _key_bytes(key)
        while True:
            data = self._core_read(kb, kb)
            if data is None:
                if default is _MISSING:
                    raise KeyNotFoundError(key)
                return default
            if self._core_erase(kb, key):
                return self._loads(data)
            # else erased by another process: look again

    def popitem(self) -> Tuple[K, Any]:
        """Removes and returns some (key, value) pair; KeyError if empty."""
        while True:
            first = self._core_snapshot(False, 1)
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
        self._live()
        kb = _key_bytes(key)
        vb = None
        while True:
            data = self._core_read(kb, kb)
            if data is not None:
                return self._loads(data)
            if vb is None:
                vb = self._dump(default)
            if self._core_insert(kb, key, vb):
                return default
            # else inserted by another process: read it

    def clear(self) -> None:
        """Removes every key: one call to the engine's clear, which erases bucket by
        bucket (O(capacity), no per-key work in Python). Not atomic as a whole: a
        write made meanwhile to a bucket already cleared stays. Versions keep
        growing: a key written again afterwards gets a version above any it had.
        (With a libshmdict.so older than shmdict_clear: erases every key present
        when a scan passes it, weakly consistent.)"""
        self._core_clear()

    # --- shmdict's own operations ----------------------------------------------

    def sweep(self) -> int:
        """Erases the expired entries and returns how many it erased. Never needed
        for correctness (expired keys read as absent, and writers reuse their
        slots); it frees the slots ahead of writers and makes the table's
        statistics exact. A scan of the
        whole table: O(capacity)."""
        return self._core_sweep()

    def version(self, key: KeyArg) -> int:
        """The key's version: it grows with every write of the key, never repeats, and
        is 0 when the key is absent."""
        self._live()
        kb = _key_bytes(key)
        return self._core_read_version(kb, kb)[1]

    def get_with_version(self, key: KeyArg, default: Any = None) -> Tuple[Any, int]:
        """(value, version) read atomically; (default, 0) if absent. The version is
        what compare_and_swap and wait_for_change take."""
        self._live()
        kb = _key_bytes(key)
        data, version = self._core_read_version(kb, kb)
        if data is None:
            return default, 0
        return self._loads(data), version

    def compare_and_swap(self, key: KeyArg, expected_version: int, value: Any) -> int:
        """Writes value only if the key's version is expected_version (0: only if
        the key is absent). Returns the new version; raises VersionMismatchError if
        the version differs."""
        self._live()
        kb = _key_bytes(key)
        _check_uint("expected_version", expected_version, 64)
        return self._core_cas(kb, key, expected_version, self._dump(value))

    def increment(self, key: KeyArg, delta: int = 1, *, if_present: bool = False) -> int:
        """Atomically adds delta to the key's counter (0 if absent) and returns the
        new value. Counters are 8-byte little-endian signed integers stored raw, not
        through the serializer: read them with counter(key) (get returns them as
        serializer.loads(8 raw bytes), which is only meaningful with "bytes").
        Wraps around at 64 bits. A counter keeps its expiry; an absent or expired one
        starts from 0 with none. if_present=True: raises KeyNotFoundError, writing
        nothing, if the key is absent or expired. Raises CounterTypeError if the
        value is not 8 bytes."""
        self._live()
        kb = _key_bytes(key)
        if not isinstance(delta, int) or isinstance(delta, bool):
            raise TypeError("delta must be an int, not %s" % type(delta).__name__)
        if not -(1 << 63) <= delta < (1 << 63):
            raise errors.make(_EINVAL, "delta %d is out of the int64 range" % delta)
        return self._core_fetch_add(kb, key, delta, bool(if_present))

    @overload
    def counter(self, key: KeyArg) -> int: ...

    @overload
    def counter(self, key: KeyArg, default: _T) -> Union[int, _T]: ...

    def counter(self, key: KeyArg, default: Any = 0) -> Any:
        """The value of the counter at key (see increment), or default if absent."""
        self._live()
        kb = _key_bytes(key)
        data = self._core_read(kb, kb)
        if data is None:
            return default
        if len(data) != 8:
            raise errors.make(_ETYPE, "the value of %r is %d bytes long, not an "
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
            if deadline is None:
                ms = _WAIT_SLICE_MS
            else:
                remaining = deadline - time.monotonic()
                ms = int(min(_WAIT_SLICE_MS, max(0.0, remaining * 1000 + 0.999)))
            if self._core_wait(kb, key, version, ms):
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False

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


class _ItemsView(ItemsView[Any, Any]):
    """items(): each pair read atomically."""

    def __init__(self, d: SharedDict[Any]) -> None:
        super().__init__(d)
        self._dict = d

    def __iter__(self) -> Iterator[Tuple[Any, Any]]:
        d = self._dict
        loads = d._loads
        for kb, vb, _ in d._core_snapshot(True, None):
            yield d._decode_key(kb), loads(vb)


class _ValuesView(ValuesView[Any]):
    def __init__(self, d: SharedDict[Any]) -> None:
        super().__init__(d)
        self._dict = d

    def __iter__(self) -> Iterator[Any]:
        d = self._dict
        loads = d._loads
        for _, vb, _ in d._core_snapshot(True, None):
            yield loads(vb)


def _reopen(path: str, serializer: Serializer, read_only: bool,
            key_type: Union[Type[str], Type[bytes]]) -> SharedDict[Any]:
    return SharedDict(path, serializer=serializer, create=False, read_only=read_only,
                      key_type=key_type)
