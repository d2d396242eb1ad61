"""Chooses the engine core SharedDict inherits from.

- shmdict._native (api/python/native/shmdict_native.cc), the extension module that
  calls the engine's C++ API directly: used whenever it imports;
- shmdict._ctcore, ctypes over libshmdict.so: used where the extension is not built
  (or not for this Python), and when the environment asks for it:
  SHMDICT_FORCE_CTYPES=1, or SHMDICT_LIBRARY set (that library is to be used, and only
  the ctypes core loads libshmdict.so).

Both behave alike and pass the same tests; `name` says which one is in use,
`native_error` why the extension is not (None when it is).
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import Any, Callable, List, Optional, Tuple

FORCE_CTYPES = "SHMDICT_FORCE_CTYPES"


def _runfiles_package_dirs() -> List[str]:
    """The shmdict/ package directories of the Bazel runfiles trees this program runs
    in. Bazel puts the extension module there; but Python resolves the symbolic link
    to a py_test's or py_binary's source file, so the package may be imported from
    the source tree, which has no extension module (as shmdict/_clib.py finds
    libshmdict.so in the runfiles)."""
    roots = [os.environ.get(var) for var in ("RUNFILES_DIR", "TEST_SRCDIR")]
    for entry in sys.argv[:1] + sys.path:
        if entry and ".runfiles" + os.sep in entry:
            roots.append(entry[:entry.index(".runfiles" + os.sep) + len(".runfiles")])
    found: List[str] = []
    for root in roots:
        if root:
            path = os.path.join(root, "shmdict", "api", "python", "shmdict")
            if os.path.isdir(path) and path not in found:
                found.append(path)
    return found


def _load_native() -> Tuple[Optional[ModuleType], Optional[str]]:
    """(shmdict._native, None), or (None, why not)."""
    force = os.environ.get(FORCE_CTYPES, "")
    if force not in ("", "0"):
        return None, "%s=%s" % (FORCE_CTYPES, force)
    if os.environ.get("SHMDICT_LIBRARY"):
        return None, "SHMDICT_LIBRARY is set: libshmdict.so through ctypes"
    try:
        from . import _native
        return _native, None
    except ImportError as e:
        error = e
    # Not beside the package: look in Bazel's runfiles too (extending the package's
    # search path, so that the module is imported under its own name).
    package = sys.modules[__name__.rpartition(".")[0]]
    extra = [d for d in _runfiles_package_dirs() if d not in package.__path__]
    if extra:
        package.__path__.extend(extra)
        try:
            from . import _native
            return _native, None
        except ImportError as e:
            error = e
    return None, "shmdict._native does not import: %s" % error


_native_module, native_error = _load_native()

Core: Any
unlink: Callable[[bytes], None]
# The file of the engine in use: the extension module, or libshmdict.so.
path: str
if _native_module is not None:
    name = "native"
    Core = _native_module.Core
    unlink = _native_module.unlink
    path = _native_module.__file__ or ""
else:
    from . import _clib, _ctcore
    name = "ctypes"
    Core = _ctcore.Core
    unlink = _ctcore.unlink
    path = _clib.path


def check_eviction_supported(policy: int, eviction: object) -> None:
    """UnsupportedError if this core cannot create a table with this policy (a
    libshmdict.so older than eviction)."""
    if _native_module is None:
        from . import _ctcore
        _ctcore.check_eviction_supported(policy, eviction)
