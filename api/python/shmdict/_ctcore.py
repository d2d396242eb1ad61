"""The ctypes core: SharedDict's binding of libshmdict.so (api/shmdict_c.h), used where
the extension module shmdict._native cannot be imported, or with
SHMDICT_FORCE_CTYPES=1 or SHMDICT_LIBRARY set (shmdict/_engine.py chooses).

SharedDict (shmdict/_dict.py) inherits from a core: this class or
shmdict._native.Core (api/python/native/shmdict_native.cc). The two have the same
methods with the same behaviour, and the package's tests run against each. This class
is also the reference for their signatures: it is what type checkers see.

- Hot methods, those users call: get, __getitem__, __setitem__, __delitem__,
  __contains__, get_many.
- Primitives for the rest of SharedDict, named _core_*. Those taking a key take its
  stored bytes `kb` (shmdict._common.key_bytes) and `key`, the caller's key, to name
  in error messages. Each raises the shmdict exception of the C API's code.

Each call holds a reference to the C handle while it runs (`h` below), so that
close() from another thread never frees a handle in use: the table is closed when the
last call in progress returns.
"""

from __future__ import annotations

import ctypes
from typing import Any, Callable, Iterable, List, Optional, Tuple, Type

from . import _clib
from . import errors
from ._common import MISSING as _MISSING
from ._common import KeyArg
from ._common import key_bytes as _key_bytes
from ._common import value_bytes as _value_bytes
from .errors import KeyNotFoundError, UnsupportedError
from .serializers import Serializer

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
    return errors._from_engine(code, message, ctypes.get_errno(),
                               errors._NO_KEY if key is _MISSING else key, cls)


def _read(h: _Handle, kb: bytes, key: object,
          version_out: Optional[List[int]] = None) -> Optional[bytes]:
    """The stored bytes of key `kb`, or None when the key is absent; its version is
    appended to version_out if given (0 when absent). Raises for other errors."""
    try:
        s = _take()
    except IndexError:
        s = _Scratch(_FIRST_BUFFER)
    n = len(kb)
    c_n = _SIZES[n] if n < 4096 else _size_t(n)
    while True:
        rc = _get(h, kb, c_n, s.buf, s.c_cap, s.length_ptr, s.version_ptr)
        if rc == 0:
            data: bytes = s.buf[:s.length.value]
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
            if version_out is not None:
                version_out.append(0)
            return None
        raise _error(rc, key)
    if s.cap <= _KEEP_LIMIT:
        _give(s)
    if version_out is not None:
        version_out.append(version)
    return data


def unlink(path: bytes) -> None:
    """Removes the table file at path; TableNotFoundError if absent."""
    rc = _clib.unlink(path)
    if rc:
        raise _error(rc, cls=errors.TableNotFoundError if rc == _clib.ENOTFOUND else None)


def _unsupported(name: str) -> UnsupportedError:
    return UnsupportedError("%s is missing from %s, which predates per-key expiry: "
                            "rebuild libshmdict.so" % (name, _clib.path))


def _need(function: Optional[Any], name: str) -> Any:
    """function, or UnsupportedError when the loaded library lacks `name`."""
    if function is None:
        raise _unsupported(name)
    return function


def check_eviction_supported(policy: int, eviction: object) -> None:
    """UnsupportedError if the library cannot create a table with this policy (C
    code `policy`, given as `eviction`)."""
    if policy and _clib.set_ is None:
        # An older library would ignore the field and create a table that never
        # evicts.
        raise _unsupported("shmdict_set (for eviction=%r)" % (eviction,))


class Core:
    """The engine binding SharedDict inherits from (see the module's docstring)."""

    _handle: Optional[_Handle] = None
    _c_serializer: Serializer
    _c_dumps: Callable[[Any], Any]
    _c_loads: Callable[[bytes], Any]

    def _closed_error(self) -> errors.Error:
        """The exception for a call on a closed SharedDict (SharedDict names it)."""
        return errors.ClosedError("operation on a closed SharedDict")

    def _h(self) -> _Handle:
        h = self._handle
        if h is None:
            raise self._closed_error()
        return h

    # --- hot methods -------------------------------------------------------------

    def get(self, key: KeyArg, default: Any = None) -> Any:
        """The value of key, or default if absent."""
        h = self._handle
        if h is None:
            h = self._h()  # raises ClosedError
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
            return self._c_loads(data)
        _give(s)
        if rc == _ENOTFOUND:
            return default
        # A value longer than the buffer, or an error.
        data = _read(h, kb, key)
        if data is None:
            return default
        return self._c_loads(data)

    def __getitem__(self, key: KeyArg) -> Any:
        value = self.get(key, _MISSING)
        if value is _MISSING:
            raise KeyNotFoundError(key)
        return value

    def __setitem__(self, key: KeyArg, value: Any) -> None:
        h = self._handle
        if h is None:
            h = self._h()  # raises ClosedError
        kb = key.encode() if type(key) is str and key.isascii() else _key_bytes(key)
        vb = self._c_dumps(value)
        if type(vb) is not bytes:
            vb = _value_bytes(vb, self._c_serializer)
        n = len(kb)
        m = len(vb)
        rc = _put(h, kb, _SIZES[n] if n < 4096 else _size_t(n), vb,
                  _SIZES[m] if m < 4096 else _size_t(m), None)
        if rc:
            raise _error(rc, key)

    def __delitem__(self, key: KeyArg) -> None:
        h = self._h()
        kb = _key_bytes(key)
        rc = _clib.erase(h, kb, len(kb))
        if rc:
            raise _error(rc, key)

    def __contains__(self, key: object) -> bool:
        h = self._h()
        try:
            kb = _key_bytes(key)
        except TypeError:
            return False
        return _read(h, kb, key) is not None

    def get_many(self, keys: Iterable[KeyArg], default: Any = None) -> List[Any]:
        """[d.get(k, default) for k in keys], in fewer C calls: faster per key on
        large tables (the keys' memory misses overlap). Each value is read
        atomically; the list is not one snapshot."""
        h = self._h()
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
            loads = self._c_loads
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
                    data = _read(h, chunk[i], chunk[i])
                    out.append(default if data is None else loads(data))
                else:
                    raise errors.make(r, "get_many: %s (key %r)" % (
                        _clib.strerror(r).decode(), chunk[i]))
        return out

    # --- primitives ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether this SharedDict is closed."""
        return self._handle is None

    def _core_open(self, path: bytes, flags: int,
                   options: Optional[Tuple[int, int, int, int, int]]) -> None:
        """Opens the table at path with the C API's flags and, with _clib.CREATE,
        options (capacity, max_key_size, max_value_size, mode, eviction); the handle
        replaces any this core had. Raises TableNotFoundError if absent (without
        CREATE), TableExistsError (EXCL), and the others of shmdict_open."""
        out = ctypes.c_void_p()
        c_options = _clib.Options(*options) if options is not None else None
        rc = _clib.open_(path, flags, ctypes.byref(c_options) if c_options else None,
                         ctypes.addressof(out))
        if rc:
            raise _error(rc, cls=errors.TableNotFoundError
                         if rc == _clib.ENOTFOUND else None)
        self._handle = _Handle(out.value)

    def _core_close(self) -> None:
        """Drops this core's handle (idempotent); calls in progress finish first."""
        self._handle = None

    def _core_serializer(self, serializer: Serializer, dumps: Callable[[Any], Any],
                         loads: Callable[[bytes], Any], kind: int, protocol: int) -> None:
        """The serializer the hot methods use: dumps/loads as given (kind and protocol
        are for the native core, which calls pickle itself for kind 1 and keeps
        bytes as they are for kind 2)."""
        self._c_serializer = serializer
        self._c_dumps = dumps
        self._c_loads = loads

    def _core_read(self, kb: bytes, key: object) -> Optional[bytes]:
        """The stored bytes, or None if absent."""
        return _read(self._h(), kb, key)

    def _core_read_version(self, kb: bytes, key: object) -> Tuple[Optional[bytes], int]:
        """(stored bytes, version), or (None, 0) if absent, read atomically."""
        version: List[int] = []
        data = _read(self._h(), kb, key, version)
        return data, version[0]

    def _core_erase(self, kb: bytes, key: object) -> bool:
        """Erases the key; False if it was absent."""
        h = self._h()
        rc = _clib.erase(h, kb, len(kb))
        if rc == _ENOTFOUND:
            return False
        if rc:
            raise _error(rc, key)
        return True

    def _core_insert(self, kb: bytes, key: object, vb: bytes) -> bool:
        """Inserts the key if absent; False if it was present."""
        h = self._h()
        rc = _clib.insert(h, kb, len(kb), vb, len(vb), None)
        if rc == _clib.EEXISTS:
            return False
        if rc:
            raise _error(rc, key)
        return True

    def _core_set(self, kb: bytes, key: object, vb: bytes, ttl_ms: int,
                  flags: int) -> int:
        """shmdict_set: the new version; 0 when a flag's condition (IF_ABSENT,
        IF_PRESENT) was not met. Without a ttl or flags, shmdict_put (which older
        libraries have too); IF_ABSENT without a ttl falls back to shmdict_insert
        there."""
        h = self._h()
        version = ctypes.c_uint64()
        if ttl_ms == 0 and flags == 0:
            rc = _put(h, kb, _size_t(len(kb)), vb, _size_t(len(vb)),
                      ctypes.pointer(version))
        elif _clib.set_ is None and ttl_ms == 0 and flags == _clib.IF_ABSENT:
            rc = _clib.insert(h, kb, len(kb), vb, len(vb), ctypes.addressof(version))
        else:
            rc = _need(_clib.set_, "shmdict_set")(h, kb, len(kb), vb, len(vb), ttl_ms,
                                                  flags, ctypes.addressof(version))
        if (rc == _clib.EEXISTS and flags & _clib.IF_ABSENT) or \
                (rc == _ENOTFOUND and flags & _clib.IF_PRESENT):
            return 0
        if rc:
            raise _error(rc, key)
        return version.value

    def _core_touch(self, kb: bytes, key: object, ttl_ms: int) -> bool:
        """A new expiry (0: never) for a present key; False if absent or expired."""
        h = self._h()
        rc = _need(_clib.touch, "shmdict_touch")(h, kb, len(kb), ttl_ms, None)
        if rc == _ENOTFOUND:
            return False
        if rc:
            raise _error(rc, key)
        return True

    def _core_ttl(self, kb: bytes, key: object) -> int:
        """Milliseconds left, -1 if the key never expires; KeyNotFoundError if absent
        or expired."""
        h = self._h()
        out = ctypes.c_int64()
        rc = _need(_clib.ttl, "shmdict_ttl")(h, kb, len(kb), ctypes.addressof(out))
        if rc:
            raise _error(rc, key)
        return out.value

    def _core_cas(self, kb: bytes, key: object, expected_version: int, vb: bytes) -> int:
        """shmdict_compare_and_swap: the new version."""
        h = self._h()
        version = ctypes.c_uint64()
        rc = _clib.compare_and_swap(h, kb, len(kb), expected_version, vb, len(vb),
                                    ctypes.addressof(version))
        if rc:
            raise _error(rc, key)
        return version.value

    def _core_fetch_add(self, kb: bytes, key: object, delta: int, if_present: bool) -> int:
        """shmdict_fetch_add(_flags): the counter's new value."""
        h = self._h()
        out = ctypes.c_int64()
        if if_present:
            rc = _need(_clib.fetch_add_flags, "shmdict_fetch_add_flags")(
                h, kb, len(kb), delta, _clib.IF_PRESENT, ctypes.addressof(out), None)
        else:
            rc = _clib.fetch_add(h, kb, len(kb), delta, ctypes.addressof(out))
        if rc:
            raise _error(rc, key)
        return out.value

    def _core_wait(self, kb: bytes, key: object, version: int, timeout_ms: int) -> bool:
        """shmdict_wait: True when the version differs, False on timeout."""
        h = self._h()
        rc = _clib.wait(h, kb, len(kb), version, timeout_ms)
        if rc == 0:
            return True
        if rc == _clib.ETIMEOUT:
            return False
        raise _error(rc, key)

    def _core_count(self) -> int:
        """The number of entries (a scan); BadFileError where it skipped corrupt
        slots."""
        h = self._h()
        n = ctypes.c_uint64()
        rc = _clib.count(h, ctypes.addressof(n))
        if rc:
            raise _error(rc)
        return n.value

    def _core_clear(self) -> None:
        """Erases every entry: shmdict_clear, or with a library older than it, every
        key a scan finds."""
        h = self._h()
        if _clib.clear is not None:
            rc = _clib.clear(h)
            if rc:
                raise _error(rc)
            return
        for kb, _, _ in self._core_snapshot(False, None):
            rc = _clib.erase(h, kb, len(kb))
            if rc and rc != _clib.ENOTFOUND:
                raise _error(rc, kb)

    def _core_sweep(self) -> int:
        """Erases the expired entries; returns how many."""
        h = self._h()
        erased = ctypes.c_uint64()
        rc = _need(_clib.sweep, "shmdict_sweep")(h, ctypes.addressof(erased))
        if rc:
            raise _error(rc)
        return erased.value

    def _core_snapshot(self, with_values: bool,
                       limit: Optional[int]) -> List[Tuple[bytes, bytes, int]]:
        """[(key bytes, value bytes (b"" unless with_values), version)] of the
        entries, weakly consistent, at most `limit` of them. Raises, with nothing
        returned, when shmdict_foreach fails: BadFileError where it skipped corrupt
        slots (after visiting the readable ones)."""
        h = self._h()
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
