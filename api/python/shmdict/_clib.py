"""Loads libshmdict.so and declares the C API of api/shmdict_c.h for ctypes.

The library is looked for, in this order:

1. the file named by the environment variable SHMDICT_LIBRARY (if set, nothing else
   is tried);
2. libshmdict.so next to this package (inside the shmdict/ directory);
3. Bazel's runfiles: <runfiles>/shmdict/api/libshmdict.so, with <runfiles> from
   RUNFILES_DIR or TEST_SRCDIR, or the *.runfiles directory that sys.argv[0] or a
   sys.path entry is in; and api/libshmdict.so relative to this package's place in
   a runfiles tree (api/python/shmdict/);
4. the system's dynamic loader (LD_LIBRARY_PATH, ld.so.cache): libshmdict.so.

Two handles on the one library are kept:

- `fast` (ctypes.PyDLL) keeps the GIL during the call. It is used only for functions
  that never wait (lookups take no lock and never block in shmdict), where releasing
  and retaking the GIL would cost more than the call itself.
- `lib` (ctypes.CDLL) releases the GIL during the call: writes (which may wait for a
  bucket lock), shmdict_wait, scans, open and close.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import Any, List, Optional, Sequence, Tuple

ENV_VAR = "SHMDICT_LIBRARY"
LIBRARY_NAME = "libshmdict.so"

# Return codes (api/shmdict_c.h).
OK = 0
ENOTFOUND = -1
EEXISTS = -2
EFULL = -3
ETOOBIG = -4
EBUFFER = -5
EVERSION = -6
ETYPE = -7
EINVAL = -8
EBADFILE = -9
EPERM = -10
ETIMEOUT = -11
EIO = -12

# Flags of shmdict_open.
CREATE = 0x1
EXCL = 0x2
READONLY = 0x4
ALLOW_GROUP = 0x8

# Flags of shmdict_set and shmdict_fetch_add_flags.
IF_ABSENT = 0x1   # only if absent (an expired key is absent): else EEXISTS
IF_PRESENT = 0x2  # only if present and unexpired: else ENOTFOUND

# Eviction policies (shmdict_options.eviction).
EVICT_NONE = 0
EVICT_LRS = 1


class Options(ctypes.Structure):
    """struct shmdict_options."""
    _fields_ = [
        ("capacity", ctypes.c_uint64),
        ("max_key_size", ctypes.c_uint32),
        ("max_value_size", ctypes.c_uint32),
        ("mode", ctypes.c_uint32),
        # SHMDICT_EVICT_*; 0 by default. Opening an existing table, 0 accepts its
        # policy and a nonzero one must match it. A library older than expiry reads
        # only the fields before this one.
        ("eviction", ctypes.c_uint32),
    ]


# int (*shmdict_foreach_fn)(void *ctx, const void *key, size_t key_len,
#                           const void *value, size_t value_len, uint64_t version)
FOREACH_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                              ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                              ctypes.c_uint64)


def _candidates() -> List[Tuple[str, str]]:
    """(description, path) pairs to try, in order."""
    env = os.environ.get(ENV_VAR)
    if env:
        return [("$" + ENV_VAR, env)]
    here = os.path.dirname(os.path.abspath(__file__))
    found = [("next to the package", os.path.join(here, LIBRARY_NAME))]
    roots: List[Tuple[str, Optional[str]]] = [
        ("$" + var, os.environ.get(var)) for var in ("RUNFILES_DIR", "TEST_SRCDIR")]
    # `bazel run` sets neither: the runfiles tree is where the program and the import
    # paths of its stub are (python resolves symbolic links in sys.path[0]).
    for entry in sys.argv[:1] + sys.path:
        if entry and ".runfiles" + os.sep in entry:
            roots.append(("runfiles of " + entry,
                          entry[:entry.index(".runfiles" + os.sep) + len(".runfiles")]))
    seen = set()
    for where, root in roots:
        if root and root not in seen:
            seen.add(root)
            found.append((where, os.path.join(root, "shmdict", "api", LIBRARY_NAME)))
    # api/python/shmdict/_clib.py -> api/libshmdict.so, in a runfiles tree.
    found.append(("runfiles tree of the package",
                  os.path.normpath(os.path.join(here, os.pardir, os.pardir, LIBRARY_NAME))))
    return found


def _load() -> Tuple[ctypes.CDLL, ctypes.PyDLL, str]:
    """Returns (CDLL, PyDLL, path) of libshmdict.so, or raises ImportError."""
    tried = []
    for where, path in _candidates():
        if not os.path.exists(path):
            tried.append("%s: %s (no such file)" % (where, path))
            if where == "$" + ENV_VAR:
                break
            continue
        try:
            return ctypes.CDLL(path, use_errno=True), ctypes.PyDLL(path), path
        except OSError as e:
            tried.append("%s: %s (%s)" % (where, path, e))
            if where == "$" + ENV_VAR:
                break
    else:
        system = ctypes.util.find_library("shmdict") or LIBRARY_NAME
        try:
            return ctypes.CDLL(system, use_errno=True), ctypes.PyDLL(system), system
        except OSError as e:
            tried.append("system loader: %s (%s)" % (system, e))
    raise ImportError(
        "shmdict: cannot load %s. Build it with `tools/bazel build -c opt "
        "//api:libshmdict.so` and set %s to the file (bazel-bin/api/libshmdict.so), "
        "or depend on //api/python:shmdict from Bazel. Tried:\n  %s"
        % (LIBRARY_NAME, ENV_VAR, "\n  ".join(tried)))


lib, fast, path = _load()

_int = ctypes.c_int
_u64 = ctypes.c_uint64
_size = ctypes.c_size_t
_vp = ctypes.c_void_p
_cp = ctypes.c_char_p


def _declare(dll: ctypes.CDLL, name: str, argtypes: Optional[Sequence[Any]],
             restype: Any = _int) -> Any:
    f = getattr(dll, name)
    f.argtypes = argtypes
    f.restype = restype
    return f


# Pointers to out-parameters are passed as addresses (ints) to c_void_p parameters.
open_ = _declare(lib, "shmdict_open", [_cp, _int, ctypes.POINTER(Options), _vp])
close = _declare(lib, "shmdict_close", [_vp])
unlink = _declare(lib, "shmdict_unlink", [_cp])
get_many = _declare(fast, "shmdict_get_many",
                    [_vp, _size, _vp, _vp, _vp, _vp, _vp, _vp, _vp])

# The two hot calls have no argtypes: converting seven arguments through argtypes
# costs more than the lookup itself. Their callers pass only values whose C type
# ctypes knows exactly: ctypes instances (c_void_p handle, c_size_t lengths from
# size_t(), arrays, pointer()s), bytes (const char *) and None (NULL). Never a
# Python int: that would be passed as a C int.
#   int shmdict_get(shmdict *, const void *key, size_t, void *value, size_t cap,
#                   size_t *value_len, uint64_t *version)
#   int shmdict_put(shmdict *, const void *key, size_t, const void *value, size_t,
#                   uint64_t *version)
get = _declare(fast, "shmdict_get", None)
put = _declare(lib, "shmdict_put", None)

_SIZES = tuple(ctypes.c_size_t(n) for n in range(4096))


def size_t(n: int) -> ctypes.c_size_t:
    """A c_size_t holding n (shared, immutable instances for small n)."""
    return _SIZES[n] if n < 4096 else ctypes.c_size_t(n)

insert = _declare(lib, "shmdict_insert", [_vp, _cp, _size, _cp, _size, _vp])
replace = _declare(lib, "shmdict_replace", [_vp, _cp, _size, _cp, _size, _vp])
erase = _declare(lib, "shmdict_erase", [_vp, _cp, _size])
compare_and_swap = _declare(lib, "shmdict_compare_and_swap",
                            [_vp, _cp, _size, _u64, _cp, _size, _vp])
fetch_add = _declare(lib, "shmdict_fetch_add", [_vp, _cp, _size, ctypes.c_int64, _vp])
wait = _declare(lib, "shmdict_wait", [_vp, _cp, _size, _u64, ctypes.c_int64])
count = _declare(lib, "shmdict_count", [_vp, _vp])
strerror = _declare(lib, "shmdict_strerror", [_int], _cp)
# Kept on the GIL: it must run on the thread whose error it reports, right after the
# failed call, and it never waits.
last_error = _declare(fast, "shmdict_last_error", [], _cp)

# shmdict_foreach: optional (libraries built before it existed lack it). Called with
# the GIL held: the callback runs Python code for every entry anyway.
foreach: Optional[Any]
try:
    foreach = _declare(fast, "shmdict_foreach", [_vp, FOREACH_FN, _vp])
except AttributeError:
    foreach = None


def _optional(dll: ctypes.CDLL, name: str, argtypes: Sequence[Any],
              restype: Any = _int) -> Optional[Any]:
    """The function, or None when this libshmdict.so predates it: the calls that
    need it then raise UnsupportedError."""
    try:
        return _declare(dll, name, argtypes, restype)
    except AttributeError:
        return None


# Expiry, conditional writes, clear and sweep (libraries built before per-key expiry
# lack them). Writes release the GIL; shmdict_ttl is a lookup and keeps it.
#   int shmdict_set(shmdict *, const void *key, size_t, const void *value, size_t,
#                   uint64_t ttl_ms, int flags, uint64_t *version)
set_ = _optional(lib, "shmdict_set", [_vp, _cp, _size, _cp, _size, _u64, _int, _vp])
#   int shmdict_touch(shmdict *, const void *key, size_t, uint64_t ttl_ms,
#                     uint64_t *version)
touch = _optional(lib, "shmdict_touch", [_vp, _cp, _size, _u64, _vp])
#   int shmdict_ttl(shmdict *, const void *key, size_t, int64_t *ttl_ms)
ttl = _optional(fast, "shmdict_ttl", [_vp, _cp, _size, _vp])
#   int shmdict_clear(shmdict *)
clear = _optional(lib, "shmdict_clear", [_vp])
#   int shmdict_sweep(shmdict *, uint64_t *erased)
sweep = _optional(lib, "shmdict_sweep", [_vp, _vp])
#   int shmdict_fetch_add_flags(shmdict *, const void *key, size_t, int64_t delta,
#                               int flags, int64_t *new_value, uint64_t *version)
fetch_add_flags = _optional(lib, "shmdict_fetch_add_flags",
                            [_vp, _cp, _size, ctypes.c_int64, _int, _vp, _vp])
