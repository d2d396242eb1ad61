"""libshmdict.so exports the C API of api/shmdict_c.h and nothing else, and works
through a foreign-function interface (Python's ctypes)."""

import ctypes
import os
import re
import secrets
import stat
import subprocess
import sys
import unittest


def _runfile(relative):
    return os.path.join(os.environ["TEST_SRCDIR"],
                        os.environ.get("TEST_WORKSPACE", "shmdict"), relative)


LIB = _runfile("api/libshmdict.so")
HEADER = _runfile("api/shmdict_c.h")
VERSION_NODE = "SHMDICT_1"


def _run(*argv):
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def header_functions():
    """The functions api/shmdict_c.h declares."""
    with open(HEADER) as f:
        text = re.sub(r"/\*.*?\*/", " ", f.read(), flags=re.S)
    return set(re.findall(r"\b(shmdict_\w+)\s*\(", text))


def exported_symbols():
    """(name, version or None, nm type) of each defined dynamic symbol."""
    symbols = []
    for line in _run("nm", "-D", "--defined-only", LIB).splitlines():
        fields = line.split()
        if not fields:
            continue
        # "<address> <type> <name>"; the address is missing for some absolute symbols.
        kind, name = fields[-2], fields[-1]
        version = None
        if "@" in name:
            name, version = re.split(r"@+", name, maxsplit=1)
        symbols.append((name, version, kind))
    return symbols


def needs_asan_runtime():
    """The libasan a sanitized build of the library needs loaded first, or None."""
    for line in _run("ldd", LIB).splitlines():
        m = re.match(r"\s*(libasan\.so\S*)\s+=>\s+(\S+)", line)
        if m:
            return m.group(2)
    return None


class Options(ctypes.Structure):
    _fields_ = [
        ("capacity", ctypes.c_uint64),
        ("max_key_size", ctypes.c_uint32),
        ("max_value_size", ctypes.c_uint32),
        ("mode", ctypes.c_uint32),
    ]


SHMDICT_OK = 0
SHMDICT_ENOTFOUND = -1
SHMDICT_EBUFFER = -5
SHMDICT_EINVAL = -8
SHMDICT_CREATE = 0x1
SHMDICT_EXCL = 0x2


def load():
    lib = ctypes.CDLL(LIB)
    handle = ctypes.c_void_p
    u64p = ctypes.POINTER(ctypes.c_uint64)
    sizep = ctypes.POINTER(ctypes.c_size_t)
    lib.shmdict_open.argtypes = [ctypes.c_char_p, ctypes.c_int,
                                 ctypes.POINTER(Options), ctypes.POINTER(handle)]
    lib.shmdict_close.argtypes = [handle]
    lib.shmdict_unlink.argtypes = [ctypes.c_char_p]
    lib.shmdict_put.argtypes = [handle, ctypes.c_char_p, ctypes.c_size_t,
                                ctypes.c_char_p, ctypes.c_size_t, u64p]
    lib.shmdict_get.argtypes = [handle, ctypes.c_char_p, ctypes.c_size_t,
                                ctypes.c_void_p, ctypes.c_size_t, sizep, u64p]
    lib.shmdict_erase.argtypes = [handle, ctypes.c_char_p, ctypes.c_size_t]
    lib.shmdict_fetch_add.argtypes = [handle, ctypes.c_char_p, ctypes.c_size_t,
                                      ctypes.c_int64, ctypes.POINTER(ctypes.c_int64)]
    lib.shmdict_count.argtypes = [handle, u64p]
    lib.shmdict_strerror.argtypes = [ctypes.c_int]
    lib.shmdict_strerror.restype = ctypes.c_char_p
    lib.shmdict_last_error.argtypes = []
    lib.shmdict_last_error.restype = ctypes.c_char_p
    for f in ("open", "close", "unlink", "put", "get", "erase", "fetch_add", "count"):
        getattr(lib, "shmdict_" + f).restype = ctypes.c_int
    return lib


class ExportsTest(unittest.TestCase):

    def test_exports_only_the_c_api(self):
        symbols = exported_symbols()
        self.assertTrue(symbols, "no dynamic symbols at all")
        for name, version, kind in symbols:
            if name == VERSION_NODE:
                self.assertEqual(kind, "A", "the version node must be an absolute symbol")
                continue
            self.assertTrue(name.startswith("shmdict_"),
                            "exports a symbol outside the C API: %s (%s)" % (name, kind))
            self.assertEqual(kind, "T", "%s is not a function" % name)
            if version is not None:
                self.assertEqual(version, VERSION_NODE, name)

    def test_exports_every_function_of_the_header(self):
        declared = header_functions()
        self.assertGreaterEqual(len(declared), 14, declared)
        exported = {name for name, _, _ in exported_symbols() if name != VERSION_NODE}
        self.assertEqual(exported, declared)


# A sanitized libshmdict.so cannot be loaded into an uninstrumented Python (ASan's
# runtime must come first in the process, TSan's needs static TLS that dlopen cannot
# give). Under --config=asan/tsan/ubsan the C API is checked by //tests:c_api_test.
@unittest.skipIf(os.environ.get("SHMDICT_SANITIZED"),
                 "sanitized build: the library cannot be loaded into Python")
class CtypesTest(unittest.TestCase):

    def setUp(self):
        self.lib = load()
        self.name = "shmdict-pytest-%d-%s" % (os.getpid(), secrets.token_hex(6))
        self.path = "/dev/shm/" + self.name
        self.addCleanup(self._remove)

    def _remove(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def open(self, flags, options):
        d = ctypes.c_void_p()
        rc = self.lib.shmdict_open(self.name.encode(), flags,
                                   ctypes.byref(options) if options else None,
                                   ctypes.byref(d))
        return rc, d

    def get(self, d, key, cap=64):
        buf = ctypes.create_string_buffer(cap)
        length = ctypes.c_size_t(0)
        version = ctypes.c_uint64(0)
        rc = self.lib.shmdict_get(d, key, len(key), buf, cap, ctypes.byref(length),
                                  ctypes.byref(version))
        return rc, buf.raw[:min(length.value, cap)], length.value, version.value

    def test_round_trip_in_dev_shm(self):
        options = Options(capacity=1000, max_key_size=32, max_value_size=64, mode=0)
        rc, d = self.open(SHMDICT_CREATE | SHMDICT_EXCL, options)
        self.assertEqual(rc, SHMDICT_OK, self.lib.shmdict_last_error())
        self.assertTrue(d.value)
        try:
            st = os.stat(self.path)
            self.assertTrue(stat.S_ISREG(st.st_mode))
            self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)

            version = ctypes.c_uint64(0)
            key, value = b"EURUSD", b"1.0842\x00\xff"
            rc = self.lib.shmdict_put(d, key, len(key), value, len(value),
                                      ctypes.byref(version))
            self.assertEqual(rc, SHMDICT_OK, self.lib.shmdict_last_error())
            self.assertGreater(version.value, 0)
            rc, got, length, got_version = self.get(d, key)
            self.assertEqual(rc, SHMDICT_OK)
            self.assertEqual(got, value)
            self.assertEqual(got_version, version.value)

            # Too small a buffer: the size needed comes back.
            rc, _, length, _ = self.get(d, key, cap=2)
            self.assertEqual(rc, SHMDICT_EBUFFER)
            self.assertEqual(length, len(value))

            total = ctypes.c_int64(0)
            for _ in range(3):
                rc = self.lib.shmdict_fetch_add(d, b"hits", 4, -5, ctypes.byref(total))
                self.assertEqual(rc, SHMDICT_OK)
            self.assertEqual(total.value, -15)
            count = ctypes.c_uint64(0)
            self.assertEqual(self.lib.shmdict_count(d, ctypes.byref(count)), SHMDICT_OK)
            self.assertEqual(count.value, 2)

            self.assertEqual(self.lib.shmdict_erase(d, key, len(key)), SHMDICT_OK)
            self.assertEqual(self.get(d, key)[0], SHMDICT_ENOTFOUND)
            # Another handle (the same process) sees the table.
            rc, d2 = self.open(0, None)
            self.assertEqual(rc, SHMDICT_OK, self.lib.shmdict_last_error())
            self.assertEqual(self.get(d2, b"hits")[2], 8)
            self.assertEqual(self.lib.shmdict_close(d2), SHMDICT_OK)
        finally:
            self.assertEqual(self.lib.shmdict_close(d), SHMDICT_OK)
        self.assertEqual(self.lib.shmdict_unlink(self.name.encode()), SHMDICT_OK)
        self.assertFalse(os.path.exists(self.path))

    def test_errors_come_back_as_codes_and_messages(self):
        rc, d = self.open(0, None)
        self.assertEqual(rc, SHMDICT_ENOTFOUND)
        self.assertFalse(d.value)
        self.assertIn(self.name.encode(), self.lib.shmdict_last_error())
        self.assertTrue(self.lib.shmdict_strerror(rc))
        self.assertTrue(self.lib.shmdict_strerror(12345))
        self.assertEqual(self.lib.shmdict_close(None), SHMDICT_OK)
        self.assertEqual(self.lib.shmdict_count(None, None), SHMDICT_EINVAL)
        self.assertEqual(self.lib.shmdict_unlink(None), SHMDICT_EINVAL)
        self.assertFalse(os.path.exists(self.path))


def main():
    # A library built with AddressSanitizer (--config=asan) loads only into a process
    # whose first library is the ASan runtime: run this test again with it preloaded.
    runtime = needs_asan_runtime()
    if runtime and "SHMDICT_ASAN_PRELOADED" not in os.environ:
        env = dict(os.environ)
        env["SHMDICT_ASAN_PRELOADED"] = "1"
        env["LD_PRELOAD"] = runtime
        # The interpreter's own allocations are not ours to check.
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    unittest.main()


if __name__ == "__main__":
    main()
