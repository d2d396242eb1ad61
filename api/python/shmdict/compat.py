"""A drop-in for the shared_memory_dict package's SharedMemoryDict.

    from shmdict.compat import SharedMemoryDict      # was: from shared_memory_dict ...
    smd = SharedMemoryDict(name="tokens", size=1024)
    smd["some-key"] = "some-value-with-any-type"
    smd.shm.close(); smd.shm.unlink()

What changes (see docs/python.md):
- Each key is its own entry: no whole-dictionary pickling on every access, no lock
  to configure (SHARED_MEMORY_USE_LOCK is not needed: writes are atomic per key).
- `size` is the most bytes one serialized value may take (by default at most 1 MiB:
  every slot reserves room for the largest value), not the total of all values. The
  number of keys is bounded by `capacity`: by default as many as fit in about 64 MiB
  of table (at least 16, at most 1024). Pass capacity= and max_value_size= to choose.
- The serializer gets each value, not the whole dictionary (same dumps/loads methods).
- The table is the file /dev/shm/<name>; all processes sharing it must use shmdict.
"""

from __future__ import annotations

from typing import Optional

from . import _dict
from .serializers import SerializerArg

__all__ = ["SharedMemoryDict"]

_MAX_VALUE = 1 << 20
_KEY_SIZE = 256
# A table takes about 2.5 x (key + value maxima) bytes per key of capacity.
_DEFAULT_BUDGET = 64 << 20


def _default_capacity(max_key_size: int, max_value_size: int) -> int:
    per_key = 5 * (max_key_size + max_value_size) // 2
    return max(16, min(1024, _DEFAULT_BUDGET // per_key))


class _Shm:
    """Stands for the multiprocessing.shared_memory.SharedMemory behind a
    shared_memory_dict: close() and unlink(), as its users call them."""

    def __init__(self, owner: SharedMemoryDict) -> None:
        self._owner = owner

    @property
    def name(self) -> str:
        return self._owner.path

    def close(self) -> None:
        self._owner.close()

    def unlink(self) -> None:
        self._owner.unlink(missing_ok=True)


class SharedMemoryDict(_dict.SharedDict[str]):
    """SharedMemoryDict(name, size, *, serializer=PickleSerializer(), capacity=None,
    max_key_size=256, max_value_size=None): a SharedDict sized from `size`
    (max_value_size = min(size, 1 MiB); see the module's docstring). An existing
    table is opened as it is."""

    def __init__(self, name: _dict.PathArg, size: int, *,
                 serializer: SerializerArg = None, capacity: Optional[int] = None,
                 max_key_size: int = _KEY_SIZE,
                 max_value_size: Optional[int] = None) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ValueError("size must be a positive int, got %r" % (size,))
        if max_value_size is None:
            max_value_size = min(size, _MAX_VALUE)
        if capacity is None:
            capacity = _default_capacity(max_key_size, max_value_size)
        # Unlike SharedDict(...), an existing table of other sizes is opened as it is.
        self._setup(name, capacity=capacity, max_key_size=max_key_size,
                    max_value_size=max_value_size, serializer=serializer, create=True,
                    read_only=False, exclusive=False, allow_group=False, mode=0o600,
                    key_type=str, match_existing=False)

    @property
    def shm(self) -> _Shm:
        return _Shm(self)

    def cleanup(self) -> None:
        """Closes this process's handle (the table stays)."""
        self.close()
