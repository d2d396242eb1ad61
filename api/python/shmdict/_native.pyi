# The extension module shmdict._native (api/python/native/shmdict_native.cc): a core
# with the same methods as the ctypes one, which is the reference for their types.
from ._ctcore import Core as _Reference

class Core(_Reference): ...

def unlink(path: bytes) -> None: ...

CREATE: int
EXCL: int
READONLY: int
ALLOW_GROUP: int
IF_ABSENT: int
IF_PRESENT: int
