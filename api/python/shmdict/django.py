"""shmdict.django: a Django cache backend that the processes of one machine share.

    CACHES = {
        "default": {
            "BACKEND": "shmdict.django.ShmdictCache",
            "LOCATION": "myapp-cache",         # the table: /dev/shm/myapp-cache
            "TIMEOUT": 300,                    # Django's rules; None: never expires
            "OPTIONS": {
                "capacity": 10_000,            # keys the table holds
                "max_key_size": 512,           # bytes of a key after KEY_PREFIX etc.
                "max_value_size": 4096,        # bytes of a stored (pickled) value
                                               # (a 111 MiB file: docs/python.md)
                "eviction": "lrs",             # full: replace the least recently stored
            },
        },
    }

Every worker process of a server (gunicorn, uWSGI, ...) that uses these settings
reads and writes the same table: a get is a lock-free read of shared memory, with no
server and no socket. Guide: docs/python.md, "Django".

How values are stored. An int (type int, not bool or a subclass) in the signed 64-bit
range is stored as 8 little-endian bytes, so that incr/decr are the table's atomic
fetch-add. Everything else is pickled with pickle.HIGHEST_PROTOCOL (a subclass may
set pickle_protocol); a pickle that is exactly 8 bytes long (never at protocols 4 and
5, whose pickles are at most 5 or at least 15 bytes long; possible at lower ones)
gets one more byte, which pickle.loads ignores, so no pickle is ever read as an int.

Expiry is the table's own: every key carries its deadline, an expired key reads as
absent everywhere, and writers reuse its slot.

Not supported: OPTIONS MAX_ENTRIES and CULL_FREQUENCY (ImproperlyConfigured): the
table holds `capacity` keys, and with eviction="lrs" a write into a full part of the
table replaces the entry stored longest ago instead of culling.
"""

from __future__ import annotations

import math
import numbers
import pickle
import threading
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from django.core.cache.backends.base import (  # type: ignore[import]
    DEFAULT_TIMEOUT, BaseCache, default_key_func)
from django.core.exceptions import ImproperlyConfigured  # type: ignore[import]

from . import _dict
from .errors import (CounterTypeError, KeyNotFoundError, TableFullError, TooBigError)

__all__ = ["ShmdictCache"]

# OPTIONS this backend takes (the SharedDict constructor's names) and their defaults;
# None: SharedDict's default when the table is created.
DEFAULT_OPTIONS: Dict[str, Any] = {
    "capacity": None,
    "max_key_size": 512,
    "max_value_size": None,
    "eviction": "lrs",
    "allow_group": False,
    "mode": 0o600,
}
_UNSUPPORTED_OPTIONS = ("MAX_ENTRIES", "CULL_FREQUENCY")

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_MISSING: Any = object()
# A timeout that expires at once (Django: 0 or less).
_EXPIRED: Any = object()
# Timeouts longer than this (in seconds) never expire: the table's longest ttl is
# 2^42 ms, about 139 years.
_LONGEST_TTL_S = _dict.MAX_TTL_MS // 1000

# The tables this process has open, by LOCATION and options: aliases that share a
# LOCATION share one SharedDict (and one mapping). Kept open for the life of the
# process (close() is a no-op); a child made by fork uses its parent's.
_tables: Dict[Tuple[str, Tuple[Tuple[str, Any], ...]], "_dict.SharedDict[str]"] = {}
_tables_lock = threading.Lock()


def _open_table(location: str, options: Mapping[str, Any]) -> "_dict.SharedDict[str]":
    key = (location, tuple(sorted(options.items())))
    with _tables_lock:
        table = _tables.get(key)
        if table is None:
            table = _dict.SharedDict(location, serializer="bytes", **options)
            _tables[key] = table
        return table


def _encode(value: Any, protocol: int) -> bytes:
    """The stored form of a value (see the module's docstring)."""
    if type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
        return value.to_bytes(8, "little", signed=True)
    data = pickle.dumps(value, protocol)
    if len(data) == 8:
        data += b"\0"
    return data


def _decode(data: bytes) -> Any:
    if len(data) == 8:
        return int.from_bytes(data, "little", signed=True)
    return pickle.loads(data)


class ShmdictCache(BaseCache):  # type: ignore[misc]
    """Django's cache API on a shmdict table (LOCATION), shared by every process of
    the machine that opens it; see the module's docstring for the settings.

    Differences from LocMemCache, besides being shared: incr/decr are atomic across
    processes, keep the key's expiry and take ints only (an int value fitting in 64
    bits, an int delta; TypeError otherwise, OverflowError if the result would leave
    the 64-bit range); a value over max_value_size raises TooBigError (a ValueError),
    and set() then deletes the key so that no stale value stays; a full table
    raises TableFullError (a ValueError) only with eviction "none"; keys longer than
    max_key_size bytes cannot be stored (TooBigError on writes, absent on reads).
    """

    pickle_protocol = pickle.HIGHEST_PROTOCOL

    def __init__(self, location: str, params: Dict[str, Any]) -> None:
        super().__init__(params)
        # Keys made as BaseCache makes them (no KEY_FUNCTION, no make_key or
        # validate_key of a subclass): _key makes them inline.
        self._plain_keys = (self.key_func is default_key_func
                            and type(self).make_key is BaseCache.make_key
                            and type(self).validate_key is BaseCache.validate_key)
        if not location or not isinstance(location, str):
            raise ImproperlyConfigured(
                "shmdict.django.ShmdictCache: LOCATION must name the table (a name in "
                "/dev/shm, or a path), got %r" % (location,))
        options = dict(DEFAULT_OPTIONS)
        given = params.get("OPTIONS") or {}
        for name, value in given.items():
            if name in _UNSUPPORTED_OPTIONS:
                raise ImproperlyConfigured(
                    "shmdict.django.ShmdictCache does not support OPTIONS %s: the table "
                    "holds OPTIONS['capacity'] keys, and with eviction 'lrs' a write "
                    "into a full part of it replaces the entry stored longest ago"
                    % name)
            if name not in DEFAULT_OPTIONS:
                raise ImproperlyConfigured(
                    "shmdict.django.ShmdictCache: unknown OPTIONS %r; the options are %s"
                    % (name, ", ".join(DEFAULT_OPTIONS)))
            options[name] = value
        self._location = location
        self._table = _open_table(location, {k: v for k, v in options.items()
                                             if v is not None})

    # --- helpers ---------------------------------------------------------------

    def _key(self, key: Any, version: Optional[int]) -> str:
        if not self._plain_keys:
            made: str = self.make_key(key, version=version)
            self.validate_key(made)
            return made
        # What BaseCache.make_key and default_key_func make, inline.
        made = "%s:%s:%s" % (self.key_prefix, self.version if version is None else version,
                             key)
        # Django's own check warns about keys memcached would refuse: over 250
        # characters, or with a character below 33 or equal to 127. An ASCII key of
        # printable characters other than space has none of those, and is checked here
        # at a fraction of the cost of Django's loop over its characters; anything else
        # goes through validate_key (which warns).
        if len(made) <= 250 and made.isascii() and made.isprintable() and " " not in made:
            return made
        self.validate_key(made)
        return made

    def _ttl(self, timeout: Any) -> Any:
        """SharedDict's ttl for a Django timeout: None (never expires), seconds > 0,
        or _EXPIRED (0 or less: expired at once)."""
        if timeout is DEFAULT_TIMEOUT:
            timeout = self.default_timeout
        if timeout is None:
            return None
        if not isinstance(timeout, numbers.Real):
            raise TypeError("cache timeout must be a number of seconds or None, not %s"
                            % type(timeout).__name__)
        seconds = float(timeout)
        if math.isnan(seconds):
            raise ValueError("cache timeout must be a number of seconds or None, not NaN")
        if seconds <= 0:
            return _EXPIRED
        if seconds > _LONGEST_TTL_S:  # includes math.inf
            return None
        return seconds

    def _delete(self, made: str) -> bool:
        try:
            del self._table[made]
        except KeyNotFoundError:
            return False
        except TooBigError:  # a key over max_key_size: it cannot be there
            return False
        return True

    def _present(self, made: str) -> bool:
        return made in self._table

    # --- BaseCache -------------------------------------------------------------

    def get(self, key: Any, default: Any = None, version: Optional[int] = None) -> Any:
        data = self._table.get(self._key(key, version), _MISSING)
        if data is _MISSING:
            return default
        return _decode(data)

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
            version: Optional[int] = None) -> None:
        made = self._key(key, version)
        data = _encode(value, self.pickle_protocol)  # pickling errors pass through
        ttl = self._ttl(timeout)
        if ttl is _EXPIRED:
            self._delete(made)
            return
        try:
            self._table.set(made, data, ttl)
        except TooBigError:
            # As Django's memcached backends do: no stale value stays behind.
            self._delete(made)
            raise

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT,
            version: Optional[int] = None) -> bool:
        made = self._key(key, version)
        data = _encode(value, self.pickle_protocol)
        ttl = self._ttl(timeout)
        if ttl is _EXPIRED:
            # Stored and expired at once: it succeeds where the key is absent.
            return not self._present(made)
        return self._table.add(made, data, ttl)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT,
              version: Optional[int] = None) -> bool:
        made = self._key(key, version)
        ttl = self._ttl(timeout)
        if ttl is _EXPIRED:
            return self._delete(made)
        try:
            return self._table.touch(made, ttl)
        except TooBigError:
            return False

    def delete(self, key: Any, version: Optional[int] = None) -> bool:
        return self._delete(self._key(key, version))

    def has_key(self, key: Any, version: Optional[int] = None) -> bool:
        # The stored bytes are read, never unpickled.
        return self._present(self._key(key, version))

    def get_many(self, keys: Iterable[Any],
                 version: Optional[int] = None) -> Dict[Any, Any]:
        originals: Dict[str, Any] = {}
        for key in keys:
            originals[self._key(key, version)] = key
        made = list(originals)
        found = {}
        for k, data in zip(made, self._table.get_many(made, _MISSING)):
            if data is not _MISSING:
                found[originals[k]] = _decode(data)
        return found

    def set_many(self, data: Mapping[Any, Any], timeout: Any = DEFAULT_TIMEOUT,
                 version: Optional[int] = None) -> List[Any]:
        """Sets each pair; returns the keys that could not be stored (a value over
        max_value_size: the key is deleted; a full table with eviction "none")."""
        ttl = self._ttl(timeout)
        failed = []
        for key, value in data.items():
            made = self._key(key, version)
            stored = _encode(value, self.pickle_protocol)
            if ttl is _EXPIRED:
                self._delete(made)
                continue
            try:
                self._table.set(made, stored, ttl)
            except (TooBigError, TableFullError):
                self._delete(made)
                failed.append(key)
        return failed

    def delete_many(self, keys: Iterable[Any], version: Optional[int] = None) -> None:
        for key in keys:
            self._delete(self._key(key, version))

    def incr(self, key: Any, delta: int = 1, version: Optional[int] = None) -> int:
        """Adds delta to the key's int value atomically, keeping its expiry, and
        returns the sum. ValueError if the key is absent or expired; TypeError if
        its value or delta is not an int; OverflowError (nothing changed) if the sum
        would leave the signed 64-bit range."""
        made = self._key(key, version)
        if not isinstance(delta, int):
            raise TypeError("incr/decr delta must be an int, not %s"
                            % type(delta).__name__)
        delta = int(delta)
        if not _INT64_MIN <= delta <= _INT64_MAX:
            raise OverflowError("incr/decr delta %d is out of the 64-bit range" % delta)
        try:
            new = self._table.increment(made, delta, if_present=True)
        except (KeyNotFoundError, TooBigError):
            raise ValueError("Key '%s' not found" % made) from None
        except CounterTypeError:
            value = self._table.get(made, _MISSING)
            if value is _MISSING:
                raise ValueError("Key '%s' not found" % made) from None
            raise TypeError(
                "cannot incr/decr the value of key '%s': it is %s, and only an int "
                "in the signed 64-bit range is a counter"
                % (made, type(_decode(value)).__name__)) from None
        if not _INT64_MIN <= new - delta <= _INT64_MAX:
            # The table's addition wrapped around: take delta back (exact, whatever
            # other processes added meanwhile) and say so.
            try:
                self._table.increment(made, -delta, if_present=True)
            except KeyNotFoundError:
                pass  # deleted or expired meanwhile
            raise OverflowError("incr/decr of key '%s' by %d would leave the signed "
                                "64-bit range" % (made, delta))
        return new

    def clear(self) -> None:
        """Removes every key of the table: those of every alias and version that
        shares this LOCATION, as with Django's memcached and Redis backends."""
        self._table.clear()

    def close(self, **kwargs: Any) -> None:
        """Does nothing: the table stays mapped for the life of the process (Django
        calls close() after every request)."""
