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

from . import _dict

__all__ = ["SharedMemoryDict"]

_MAX_VALUE = 1 << 20
_KEY_SIZE = 256
# A table takes about 2.5 x (key + value maxima) bytes per key of capacity.
_DEFAULT_BUDGET = 64 << 20


def _default_capacity(max_key_size, max_value_size):
    per_key = 5 * (max_key_size + max_value_size) // 2
    return max(16, min(1024, _DEFAULT_BUDGET // per_key))


class _Shm:
    """Stands for the multiprocessing.shared_memory.SharedMemory behind a
    shared_memory_dict: close() and unlink(), as its users call them."""

    def __init__(self, owner):
        self._owner = owner

    @property
    def name(self):
        return self._owner.path

    def close(self):
        self._owner.close()

    def unlink(self):
        self._owner.unlink(missing_ok=True)


class SharedMemoryDict(_dict.SharedDict):
    """SharedMemoryDict(name, size, *, serializer=PickleSerializer(), capacity=None,
    max_key_size=256, max_value_size=None): a SharedDict sized from `size`
    (max_value_size = min(size, 1 MiB); see the module's docstring). An existing
    table is opened as it is."""

    def __init__(self, name, size, *, serializer=None, capacity=None,
                 max_key_size=_KEY_SIZE, max_value_size=None):
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ValueError("size must be a positive int, got %r" % (size,))
        if max_value_size is None:
            max_value_size = min(size, _MAX_VALUE)
        if capacity is None:
            capacity = _default_capacity(max_key_size, max_value_size)
        super().__init__(name, capacity=capacity, max_key_size=max_key_size,
                         max_value_size=max_value_size, serializer=serializer,
                         create=True, _match_existing=False)

    @property
    def shm(self):
        return _Shm(self)

    def cleanup(self):
        """Closes this process's handle (the table stays)."""
        self.close()
