"""Unit tests of the shmdict Python package: every method and every error."""

import collections.abc
import errno
import fractions
import inspect
import math
import os
import pathlib
import pickle
import secrets
import shutil
import stat
import subprocess
import sys
import threading
import time
import typing
import unittest
from unittest import mock

# A sanitized libshmdict.so (--config=asan/tsan/ubsan) cannot be loaded into an
# uninstrumented Python (ASan's runtime must come first in the process, TSan's needs
# static TLS that dlopen cannot give): the whole module skips. The C API is tested
# under the sanitizers by //tests:c_api_test.
SANITIZED = bool(os.environ.get("SHMDICT_SANITIZED"))
if not SANITIZED:
    import shmdict
    from shmdict import _clib, _ctcore, _engine
    from shmdict.compat import SharedMemoryDict

# Bazel runs each test file against each core (api/python/python.bzl) and says which
# one it asked for.
EXPECTED_BACKEND = os.environ.get("SHMDICT_EXPECT_BACKEND")


def ctypes_core_only(test):
    """For tests of what only the ctypes core does: falling back where the loaded
    libshmdict.so lacks a function, and its handling of the C API's return codes
    (which these tests fake by replacing functions of shmdict._clib)."""
    return unittest.skipIf(not SANITIZED and shmdict.backend != "ctypes",
                           "a test of the ctypes core")(test)


def unique_name(tag):
    return "shmdict-py-%s-%d-%s" % (tag, os.getpid(), secrets.token_hex(6))


@unittest.skipIf(SANITIZED, "sanitized build: libshmdict.so cannot be loaded into Python")
class TableTest(unittest.TestCase):
    """Base: a fresh table name per test, removed afterwards."""

    def setUp(self):
        self.name = unique_name(self.id().rsplit(".", 1)[-1][:20])
        self.path = "/dev/shm/" + self.name
        self.addCleanup(self._remove)

    def _remove(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def open(self, **kwargs):
        kwargs.setdefault("capacity", 100)
        kwargs.setdefault("max_key_size", 32)
        kwargs.setdefault("max_value_size", 128)
        d = shmdict.SharedDict(self.name, **kwargs)
        self.addCleanup(d.close)
        return d


def needs_foreach(test):
    return unittest.skipIf(not SANITIZED and _clib.foreach is None,
                           "this libshmdict.so has no shmdict_foreach: iteration "
                           "cannot work")(test)


class OpenTest(TableTest):

    def test_creates_a_file_in_dev_shm_with_mode_0600(self):
        d = self.open()
        self.assertEqual(d.path, self.path)
        st = os.stat(self.path)
        self.assertTrue(stat.S_ISREG(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        self.assertFalse(d.closed)
        self.assertFalse(d.read_only)
        self.assertIn(self.path, repr(d))

    def test_a_path_with_a_slash_is_used_as_is(self):
        d = shmdict.SharedDict(self.path, capacity=10)
        self.addCleanup(d.close)
        d["k"] = 1
        with shmdict.SharedDict(self.name, create=False) as e:
            self.assertEqual(e["k"], 1)

    def test_options_are_keyword_only(self):
        for args in ((100,), (100, 32, 128), (None, None, None, "json")):
            with self.assertRaises(TypeError) as cm:
                shmdict.SharedDict(self.name, *args)
            self.assertIn("positional", str(cm.exception))
        self.assertFalse(os.path.exists(self.path))

    def test_second_handle_sees_the_data(self):
        d = self.open()
        d["k"] = {"a": [1, 2]}
        e = shmdict.SharedDict(self.name)  # defaults: opens the table as it is
        self.addCleanup(e.close)
        self.assertEqual(e["k"], {"a": [1, 2]})
        e["k2"] = "x"
        self.assertEqual(d["k2"], "x")

    def test_missing_table_without_create(self):
        with self.assertRaises(shmdict.TableNotFoundError) as cm:
            shmdict.SharedDict(self.name, create=False)
        self.assertIsInstance(cm.exception, FileNotFoundError)
        self.assertIsInstance(cm.exception, shmdict.Error)
        self.assertEqual(cm.exception.errno, errno.ENOENT)
        self.assertEqual(cm.exception.code, _clib.ENOTFOUND)
        self.assertIn(self.path, str(cm.exception))
        self.assertFalse(os.path.exists(self.path))

    def test_exclusive_create(self):
        self.open(exclusive=True)
        with self.assertRaises(shmdict.TableExistsError) as cm:
            self.open(exclusive=True)
        self.assertIsInstance(cm.exception, FileExistsError)

    def test_explicit_options_must_match_an_existing_table(self):
        self.open(capacity=100)
        with self.assertRaises(shmdict.InvalidArgumentError) as cm:
            self.open(capacity=200)
        self.assertIsInstance(cm.exception, ValueError)
        self.assertIn("unlike the options given", str(cm.exception))
        # Matching explicit options, or none, open it.
        self.open(capacity=100, max_key_size=32)
        shmdict.SharedDict(self.name).close()

    def test_bad_options(self):
        with self.assertRaises(shmdict.InvalidArgumentError) as cm:
            self.open(capacity=0)
        self.assertIn("capacity", str(cm.exception))
        with self.assertRaises(shmdict.InvalidArgumentError):
            self.open(capacity=-1)
        with self.assertRaises(shmdict.InvalidArgumentError):
            self.open(max_key_size=1 << 32)  # would wrap around in the C struct
        with self.assertRaises(shmdict.InvalidArgumentError) as cm:
            self.open(max_value_size=(64 << 20) + 1)
        self.assertIn("value", str(cm.exception))
        with self.assertRaises(TypeError):
            self.open(capacity="100")
        with self.assertRaises(TypeError):
            self.open(capacity=True)
        with self.assertRaises(TypeError):
            self.open(key_type=int)
        with self.assertRaises(shmdict.InvalidArgumentError):
            shmdict.SharedDict("")
        with self.assertRaises(TypeError):
            shmdict.SharedDict(42)
        self.assertFalse(os.path.exists(self.path))

    def test_a_name_with_a_nul_is_refused(self):
        # The C library would stop at the NUL: "t\0x" would open, create or remove "t".
        for bad in (self.name + "\0x", (self.name + "\0x").encode(),
                    pathlib.Path(self.path + "\0x")):
            with self.assertRaises(ValueError) as cm:
                shmdict.SharedDict(bad, capacity=10)
            self.assertIsInstance(cm.exception, shmdict.InvalidArgumentError)
            self.assertIn("NUL", str(cm.exception))
            self.assertFalse(os.path.exists(self.path), "nothing may be created")
        with self.assertRaises(ValueError):
            SharedMemoryDict(self.name + "\0x", 64)
        self.assertFalse(os.path.exists(self.path))
        d = self.open()
        d["k"] = 1
        for unlink in (shmdict.unlink,
                       lambda name: shmdict.unlink(name, missing_ok=True)):
            with self.assertRaises(ValueError) as cm:
                unlink(self.name + "\0x")
            self.assertIn("NUL", str(cm.exception))
            self.assertTrue(os.path.exists(self.path), "the table named before the NUL "
                            "must not be removed")
        self.assertEqual(d["k"], 1)

    def test_not_a_shmdict_file(self):
        with open(self.path, "wb") as f:
            f.write(b"not a table" * 100)
        os.chmod(self.path, 0o600)
        with self.assertRaises(shmdict.BadFileError) as cm:
            shmdict.SharedDict(self.name)
        self.assertEqual(cm.exception.code, _clib.EBADFILE)
        self.assertIn("too short for a shmdict header", str(cm.exception))
        with self.assertRaises(shmdict.BadFileError):
            shmdict.unlink(self.name)
        self.assertTrue(os.path.exists(self.path), "a foreign file must be left alone")

    def test_group_writable_file_needs_allow_group(self):
        self.open().close()
        os.chmod(self.path, 0o660)
        with self.assertRaises(shmdict.PermissionDeniedError) as cm:
            shmdict.SharedDict(self.name)
        self.assertIsInstance(cm.exception, PermissionError)
        self.assertIn("group", str(cm.exception))
        d = shmdict.SharedDict(self.name, allow_group=True)
        d["k"] = 1
        d.close()

    def test_read_only(self):
        d = self.open()
        d["k"] = 1
        r = shmdict.SharedDict(self.name, read_only=True)
        self.addCleanup(r.close)
        self.assertTrue(r.read_only)
        self.assertEqual(r["k"], 1)
        for write in (lambda: r.__setitem__("k", 2), lambda: r.__delitem__("k"),
                      lambda: r.increment("n"), lambda: r.compare_and_swap("k", 0, 1),
                      lambda: r.setdefault("new", 1), lambda: r.set("k", 3)):
            with self.assertRaises(shmdict.PermissionDeniedError) as cm:
                write()
            self.assertIsInstance(cm.exception, PermissionError)
        self.assertEqual(d["k"], 1)
        with self.assertRaises(shmdict.TableNotFoundError):
            shmdict.SharedDict(self.name + "-absent", read_only=True)

    def test_library_path(self):
        self.assertTrue(os.path.exists(shmdict.library_path), shmdict.library_path)


class MappingTest(TableTest):

    def test_is_a_mutable_mapping(self):
        self.assertIsInstance(self.open(), collections.abc.MutableMapping)

    def test_set_get_delete_contains(self):
        d = self.open()
        d["a"] = 1
        d["b"] = [1, "two", None]
        self.assertEqual(d["a"], 1)
        self.assertEqual(d["b"], [1, "two", None])
        self.assertIn("a", d)
        self.assertNotIn("z", d)
        self.assertNotIn(5, d)  # not a possible key: absent, as for dict
        self.assertEqual(d.get("z"), None)
        self.assertEqual(d.get("z", 7), 7)
        self.assertEqual(d.get("a", 7), 1)
        d["a"] = "replaced"
        self.assertEqual(d["a"], "replaced")
        del d["a"]
        self.assertNotIn("a", d)
        self.assertEqual(len(d), 1)

    def test_missing_keys_raise_key_error(self):
        d = self.open()
        with self.assertRaises(KeyError) as cm:
            d["missing"]
        self.assertIsInstance(cm.exception, shmdict.KeyNotFoundError)
        self.assertIsInstance(cm.exception, shmdict.Error)
        self.assertEqual(cm.exception.args, ("missing",))
        with self.assertRaises(KeyError):
            del d["missing"]
        with self.assertRaises(KeyError):
            d.pop("missing")
        # A key longer than the maximum cannot be present.
        with self.assertRaises(KeyError):
            d["k" * 100]

    def test_str_and_bytes_keys_are_the_same_entry(self):
        d = self.open()
        d["clé"] = 1
        self.assertEqual(d["clé".encode()], 1)
        d[b"raw"] = 2
        self.assertEqual(d["raw"], 2)
        d[bytearray(b"ba")] = 3
        self.assertEqual(d[memoryview(b"ba")], 3)
        self.assertEqual(d.version("clé"), d.version("clé".encode()))

    def test_keys_must_be_str_or_bytes(self):
        d = self.open()
        for bad in (1, 1.5, None, ("t",)):
            with self.assertRaises(TypeError) as cm:
                d[bad] = 1
            self.assertIn("str or bytes", str(cm.exception))
            with self.assertRaises(TypeError):
                d[bad]

    def test_empty_key_and_empty_value(self):
        d = self.open(serializer="bytes")
        d[""] = b""
        self.assertEqual(d[""], b"")
        self.assertIn("", d)

    def test_len_counts_entries(self):
        d = self.open()
        self.assertEqual(len(d), 0)
        for i in range(50):
            d["k%d" % i] = i
        self.assertEqual(len(d), 50)

    @needs_foreach
    def test_iteration_keys_values_items(self):
        d = self.open()
        expected = {"k%d" % i: i * i for i in range(40)}
        for k, v in expected.items():
            d[k] = v
        self.assertEqual(sorted(d), sorted(expected))
        self.assertEqual(sorted(d.keys()), sorted(expected))
        self.assertEqual(sorted(d.values()), sorted(expected.values()))
        self.assertEqual(dict(d.items()), expected)
        self.assertEqual(dict(d), expected)
        self.assertEqual(d, expected)
        self.assertNotEqual(d, {})
        self.assertIn(("k3", 9), d.items())
        self.assertIn("k3", d.keys())
        self.assertEqual(len(d.keys()), 40)

    @needs_foreach
    def test_iteration_returns_keys_as_str_or_bytes(self):
        d = self.open()
        d[b"\xff\xfe"] = 1  # not UTF-8
        d["ok"] = 2
        keys = sorted(d, key=str)
        self.assertIn("ok", keys)
        odd = [k for k in keys if k != "ok"][0]
        self.assertIsInstance(odd, str)
        self.assertEqual(d[odd], 1, "undecodable keys must round-trip")
        b = shmdict.SharedDict(self.name, key_type=bytes)
        self.addCleanup(b.close)
        self.assertEqual(sorted(b), [b"ok", b"\xff\xfe"])
        self.assertEqual(dict(b.items()), {b"\xff\xfe": 1, b"ok": 2})

    @needs_foreach
    def test_iteration_while_another_handle_writes(self):
        d = self.open()
        for i in range(30):
            d["k%d" % i] = i
        other = shmdict.SharedDict(self.name)
        self.addCleanup(other.close)
        seen = []
        for k in d:  # the snapshot is taken at the first next()
            seen.append(k)
            other["new-" + k] = 0
            other.pop(k, None)
        self.assertEqual(sorted(seen), sorted("k%d" % i for i in range(30)))

    @needs_foreach
    def test_pop_popitem_setdefault_update_clear(self):
        d = self.open()
        d.update({"a": 1, "b": 2}, c=3)
        d.update([("d", 4)])
        self.assertEqual(d.pop("a"), 1)
        self.assertNotIn("a", d)
        self.assertEqual(d.pop("a", "dflt"), "dflt")
        self.assertEqual(d.setdefault("b", 99), 2)
        self.assertEqual(d.setdefault("e", 5), 5)
        self.assertEqual(d["e"], 5)
        self.assertEqual(d.setdefault("n"), None)
        self.assertIn("n", d)
        k, v = d.popitem()
        self.assertNotIn(k, d)
        self.assertEqual({"b": 2, "c": 3, "d": 4, "e": 5, "n": None}[k], v)
        d.clear()
        self.assertEqual(len(d), 0)
        with self.assertRaises(KeyError):
            d.popitem()

    @needs_foreach
    @ctypes_core_only
    def test_a_scan_that_reports_an_error_raises_it(self):
        # libshmdict.so's scans return SHMDICT_EBADFILE, after visiting every readable
        # entry, when they skipped corrupt slots: the Python side must raise, not
        # return the partial result. Stand-ins report it for an intact table here.
        d = self.open()
        for i in range(5):
            d["k%d" % i] = i
        real_foreach = _clib.foreach
        calls = []

        def foreach_then_fail(h, fn, ctx):
            calls.append("foreach")
            self.assertEqual(real_foreach(h, fn, ctx), 0)
            return _clib.EBADFILE

        def count_fails(h, out):
            calls.append("count")
            return _clib.EBADFILE

        # clear() is a scan only with a library that has no shmdict_clear.
        with mock.patch.object(_clib, "foreach", foreach_then_fail), \
                mock.patch.object(_clib, "count", count_fails), \
                mock.patch.object(_clib, "clear", None):
            # (list(d) would call len(d) first: comprehensions only iterate.)
            for scan in (len, lambda d: [k for k in d],
                         lambda d: [kv for kv in d.items()],
                         lambda d: [v for v in d.values()], lambda d: d.clear(),
                         lambda d: d.popitem()):
                with self.assertRaises(shmdict.BadFileError) as cm:
                    scan(d)
                self.assertEqual(cm.exception.code, _clib.EBADFILE)
        self.assertEqual(calls, ["count"] + ["foreach"] * 5)
        self.assertEqual(len(d), 5, "the failed clear() and popitem() erased nothing")

    def test_iteration_without_shmdict_foreach(self):
        if _clib.foreach is not None:
            self.skipTest("this libshmdict.so has shmdict_foreach")
        d = self.open()
        d["k"] = 1
        with self.assertRaises(shmdict.UnsupportedError) as cm:
            list(d)
        self.assertIsInstance(cm.exception, NotImplementedError)
        self.assertIn("shmdict_foreach", str(cm.exception))

    def test_pickling_the_dict_reopens_the_table(self):
        d = self.open(serializer="json")
        d["k"] = [1, 2]
        e = pickle.loads(pickle.dumps(d))
        self.addCleanup(e.close)
        self.assertIsNot(e, d)
        self.assertEqual(e.path, d.path)
        self.assertEqual(e["k"], [1, 2])
        self.assertIsInstance(e.serializer, shmdict.JSONSerializer)


class SizeLimitTest(TableTest):

    def test_oversized_key_and_value(self):
        d = self.open(max_key_size=8, max_value_size=16, serializer="bytes")
        with self.assertRaises(shmdict.TooBigError) as cm:
            d["k" * 9] = b"v"
        self.assertIsInstance(cm.exception, ValueError)
        self.assertEqual(cm.exception.code, _clib.ETOOBIG)
        self.assertIn("key of 9 bytes is over the table's maximum of 8", str(cm.exception))
        with self.assertRaises(shmdict.TooBigError) as cm:
            d["k"] = b"v" * 17
        self.assertIn("value of 17 bytes is over the table's maximum of 16",
                      str(cm.exception))
        d["k"] = b"v" * 16
        self.assertEqual(d["k"], b"v" * 16)

    def test_table_full(self):
        d = self.open(capacity=10, serializer="bytes")
        with self.assertRaises(shmdict.TableFullError) as cm:
            for i in range(10000):
                d["k%d" % i] = b"v"
        self.assertIn("full", str(cm.exception))
        self.assertGreaterEqual(i, 10)
        self.assertEqual(len(d), i)
        # Updating a present key still works.
        d["k0"] = b"w"
        self.assertEqual(d["k0"], b"w")

    def test_values_larger_than_the_first_buffer(self):
        d = self.open(capacity=4, max_value_size=(1 << 20) + 10, serializer="bytes")
        self.assertLess(os.stat(self.path).st_size, 100 << 20)
        for size in (0, 1, 4095, 4096, 4097, 100000, (1 << 20) + 1, (1 << 20) + 10):
            value = os.urandom(size)
            d["v%d" % size] = value
            self.assertEqual(d["v%d" % size], value, size)
            self.assertEqual(d.get("v%d" % size), value, size)
            self.assertEqual(d.get_with_version("v%d" % size)[0], value, size)
        # A small value after a huge one (the thread's buffer was not kept).
        self.assertEqual(d["v1"].__len__(), 1)


class SerializerTest(TableTest):

    def test_pickle_is_the_default(self):
        d = self.open()
        self.assertIsInstance(d.serializer, shmdict.PickleSerializer)
        value = {"t": (1, 2), "s": {3}, "b": b"x"}
        d["k"] = value
        self.assertEqual(d["k"], value)
        raw = shmdict.SharedDict(self.name, serializer="bytes")
        self.addCleanup(raw.close)
        self.assertEqual(pickle.loads(raw["k"]), value)

    def test_json(self):
        d = self.open(serializer="json")
        d["k"] = {"a": (1, 2), "é": None}
        self.assertEqual(d["k"], {"a": [1, 2], "é": None})
        raw = shmdict.SharedDict(self.name, serializer=shmdict.BytesSerializer())
        self.addCleanup(raw.close)
        self.assertEqual(raw["k"], '{"a":[1,2],"é":null}'.encode())
        with self.assertRaises(TypeError):
            d["bad"] = {1, 2}
        # NaN and infinities have no JSON form: Python's json would write NaN,
        # Infinity, which other languages' parsers refuse.
        for bad in (math.nan, math.inf, -math.inf, [1.0, math.nan], {"x": math.inf}):
            with self.assertRaises(ValueError) as cm:
                d["bad"] = bad
            self.assertIn("JSON", str(cm.exception))
        self.assertNotIn("bad", d)

    def test_bytes(self):
        d = self.open(serializer="bytes")
        d["k"] = b"\x00\xff"
        d["ba"] = bytearray(b"ba")
        d["mv"] = memoryview(b"mv")
        self.assertEqual((d["k"], d["ba"], d["mv"]), (b"\x00\xff", b"ba", b"mv"))
        for bad in ("str", 5, None):
            with self.assertRaises(TypeError):
                d["x"] = bad
        self.assertNotIn("x", d)

    def test_custom_serializer_object_or_class(self):
        class Upper:
            def dumps(self, value):
                return value.upper().encode()

            def loads(self, data):
                return data.decode() + "!"

        for serializer in (Upper(), Upper):
            d = shmdict.SharedDict(self.name, capacity=10, serializer=serializer)
            d["k"] = "abc"
            self.assertEqual(d["k"], "ABC!")
            d.close()

    def test_bad_serializers(self):
        with self.assertRaises(ValueError) as cm:
            self.open(serializer="yaml")
        self.assertIn("json", str(cm.exception))
        with self.assertRaises(TypeError):
            self.open(serializer=object())

        class ReturnsStr:
            def dumps(self, value):
                return "not bytes"

            def loads(self, data):
                return data

        d = self.open(serializer=ReturnsStr())
        with self.assertRaises(TypeError) as cm:
            d["k"] = 1
        self.assertIn("not bytes", str(cm.exception))


class StrSubclass(str):
    """A str that pickle writes with its class (the native core leaves it to pickle)."""


# Values around the edges of what the native core pickles itself (exact str and bytes
# under 256 bytes, int in the int32 range, float, bool, None) and others.
PICKLED_VALUES = [
    "", "a", "value-00000000000001", "\u00e9t\u00e9", "\u20ac" * 85, "x" * 255,
    "x" * 256, "\udcff lone surrogate", "\U0001F600", StrSubclass("sub"),
    b"", b"\x00\xff", b"x" * 255, b"x" * 256, bytearray(b"ba"),
    0, 1, 255, 256, 65535, 65536, -1, -255, -256, -65536, 2**31 - 1, -2**31, 2**31,
    -2**31 - 1, 2**63, -(2**100),
    0.0, -0.0, 1.5, 1e-310, math.inf, -math.inf, math.nan,
    True, False, None, [1, "a"], ("t",), {"k": 1.5},
]


class PickleBytesTest(TableTest):
    """With the default serializer, what a SharedDict stores is pickle.dumps(value,
    protocol) byte for byte, and what it reads is pickle.loads(stored bytes): the
    native core writes and recognizes pickle's bytes for common values itself."""

    def same(self, got, want):
        self.assertIs(type(got), type(want))
        if isinstance(want, float) and math.isnan(want):
            self.assertTrue(math.isnan(got))
        elif isinstance(want, float):
            self.assertEqual(repr(got), repr(want))  # -0.0 too
        else:
            self.assertEqual(got, want)

    def test_writes_and_reads_what_pickle_does(self):
        self.open(max_value_size=1024)  # creates the table
        raw = shmdict.SharedDict(self.name, serializer="bytes")
        self.addCleanup(raw.close)
        for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
            d = shmdict.SharedDict(self.name, serializer=shmdict.PickleSerializer(protocol))
            self.addCleanup(d.close)
            keys = []
            for i, value in enumerate(PICKLED_VALUES):
                with self.subTest(protocol=protocol, value=value):
                    key = "w%d" % i
                    d[key] = value
                    self.assertEqual(raw[key], pickle.dumps(value, protocol))
                    want = pickle.loads(pickle.dumps(value, protocol))
                    self.same(d[key], want)
                    self.same(d.get(key), want)
                    # Written by another program through pickle, read here.
                    raw["r%d" % i] = pickle.dumps(value, protocol)
                    self.same(d["r%d" % i], want)
                    keys += [key, "r%d" % i]
            for got, key in zip(d.get_many(keys), keys):
                self.same(got, pickle.loads(raw[key]))

    def test_bytes_that_only_look_like_a_pickle_are_pickles_business(self):
        d = self.open()
        raw = shmdict.SharedDict(self.name, serializer="bytes")
        self.addCleanup(raw.close)
        frame = b"\x80\x05\x95"
        cases = [
            frame + (7).to_bytes(8, "little") + b"\x8c\x04abc\x94.",   # short str
            frame + (7).to_bytes(8, "little") + b"\x8c\x03\xff\xfe\xfd\x94.",  # not UTF-8
            frame + (8).to_bytes(8, "little") + b"\x8c\x03abc\x94.",   # frame too long
            b"\x80\x05\x8c\x03abc\x94.",                              # no frame
            frame + (7).to_bytes(8, "little") + b"\x8c\x03abc\x94\x94",  # no STOP
            b"\x80\x06N.",                                               # protocol 6
            b"\x80\x05K",                                                # truncated
        ]
        for i, data in enumerate(cases):
            with self.subTest(data=data):
                raw["k%d" % i] = data
                try:
                    want = pickle.loads(data)
                except Exception as e:
                    with self.assertRaises(type(e)):
                        d["k%d" % i]
                    with self.assertRaises(type(e)):
                        d.get_many(["k%d" % i])
                else:
                    self.same(d["k%d" % i], want)


class VersionTest(TableTest):

    def test_versions_grow_and_are_zero_when_absent(self):
        d = self.open()
        self.assertEqual(d.version("k"), 0)
        v1 = d.set("k", "a")
        self.assertGreater(v1, 0)
        self.assertEqual(d.version("k"), v1)
        d["k"] = "b"
        v2 = d.version("k")
        self.assertGreater(v2, v1)
        self.assertEqual(d.get_with_version("k"), ("b", v2))
        self.assertEqual(d.get_with_version("absent", "dflt"), ("dflt", 0))
        del d["k"]
        self.assertEqual(d.version("k"), 0)
        self.assertGreater(d.set("k", "c"), v2, "versions are never reused")

    def test_compare_and_swap(self):
        d = self.open()
        v1 = d.compare_and_swap("k", 0, "first")  # 0: only if absent
        self.assertEqual(d["k"], "first")
        with self.assertRaises(shmdict.VersionMismatchError) as cm:
            d.compare_and_swap("k", 0, "again")
        self.assertEqual(cm.exception.code, _clib.EVERSION)
        self.assertIn("version", str(cm.exception))
        v2 = d.compare_and_swap("k", v1, "second")
        self.assertGreater(v2, v1)
        with self.assertRaises(shmdict.VersionMismatchError):
            d.compare_and_swap("k", v1, "stale")
        self.assertEqual(d.get_with_version("k"), ("second", v2))
        with self.assertRaises(shmdict.InvalidArgumentError):
            d.compare_and_swap("k", -1, "x")

    def test_a_compare_and_swap_loop_loses_no_update(self):
        d = self.open()
        d["n"] = 0

        def add(times):
            for _ in range(times):
                while True:
                    value, version = d.get_with_version("n")
                    try:
                        d.compare_and_swap("n", version, value + 1)
                        break
                    except shmdict.VersionMismatchError:
                        continue

        threads = [threading.Thread(target=add, args=(300,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(d["n"], 1200)


class CounterTest(TableTest):

    def test_increment_and_counter(self):
        d = self.open()
        self.assertEqual(d.counter("hits"), 0)
        self.assertEqual(d.counter("hits", None), None)
        self.assertEqual(d.increment("hits"), 1)
        self.assertEqual(d.increment("hits", 41), 42)
        self.assertEqual(d.increment("hits", -50), -8)
        self.assertEqual(d.counter("hits"), -8)
        raw = shmdict.SharedDict(self.name, serializer="bytes")
        self.addCleanup(raw.close)
        self.assertEqual(raw["hits"], (-8).to_bytes(8, "little", signed=True))

    def test_wraps_around_at_64_bits(self):
        d = self.open()
        d.increment("c", (1 << 63) - 1)
        self.assertEqual(d.increment("c"), -(1 << 63))

    def test_errors(self):
        d = self.open()
        d["text"] = "not a counter"
        with self.assertRaises(shmdict.CounterTypeError) as cm:
            d.increment("text")
        self.assertIsInstance(cm.exception, TypeError)
        self.assertIn("8", str(cm.exception))
        with self.assertRaises(shmdict.CounterTypeError):
            d.counter("text")
        with self.assertRaises(shmdict.InvalidArgumentError):
            d.increment("c", 1 << 63)
        with self.assertRaises(TypeError):
            d.increment("c", 1.5)
        with self.assertRaises(TypeError):
            d.increment("c", True)
        small = shmdict.SharedDict(self.name + "-small", capacity=10, max_value_size=4)
        self.addCleanup(shmdict.unlink, self.name + "-small", True)
        self.addCleanup(small.close)
        with self.assertRaises(shmdict.TooBigError):
            small.increment("c")

    def test_threads_increment_exactly(self):
        d = self.open()
        threads = [threading.Thread(target=lambda: [d.increment("n") for _ in range(2000)])
                   for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(d.counter("n"), 8000)


class WaitTest(TableTest):

    def test_returns_at_once_when_already_changed(self):
        d = self.open()
        d["k"] = 1
        start = time.monotonic()
        self.assertTrue(d.wait_for_change("k", 0, timeout=5))
        self.assertTrue(d.wait_for_change("k", d.version("k") - 1, timeout=5))
        self.assertLess(time.monotonic() - start, 1)

    def test_times_out(self):
        d = self.open()
        d["k"] = 1
        start = time.monotonic()
        self.assertFalse(d.wait_for_change("k", d.version("k"), timeout=0.25))
        self.assertGreaterEqual(time.monotonic() - start, 0.25)
        self.assertFalse(d.wait_for_change("absent", 0, timeout=0))

    def test_woken_by_a_write_from_another_thread(self):
        d = self.open()
        d["k"] = 1
        version = d.version("k")
        result = []
        t = threading.Thread(
            target=lambda: result.append(d.wait_for_change("k", version, timeout=10)))
        t.start()
        time.sleep(0.15)
        d["k"] = 2
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertEqual(result, [True])

    def test_waits_for_a_key_to_appear(self):
        d = self.open()
        t = threading.Timer(0.1, lambda: d.__setitem__("late", 1))
        t.start()
        self.assertTrue(d.wait_for_change("late", 0, timeout=10))
        t.join()
        self.assertEqual(d["late"], 1)

    def test_close_from_another_thread_interrupts_a_wait(self):
        d = self.open()
        errors = []

        def wait():
            try:
                d.wait_for_change("k", 0)
            except shmdict.ClosedError as e:
                errors.append(e)

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(0.1)
        d.close()
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertEqual(len(errors), 1)

    def test_an_infinite_timeout_waits_without_limit(self):
        d = self.open()
        for i, timeout in enumerate((math.inf, 1e300, None)):
            key = "late%d" % i
            t = threading.Timer(0.1, d.__setitem__, (key, 1))
            t.start()
            self.assertTrue(d.wait_for_change(key, 0, timeout=timeout), timeout)
            t.join()

    def test_bad_arguments(self):
        d = self.open()
        for bad in (-1, -0.5, -math.inf, math.nan):
            with self.assertRaises(ValueError) as cm:
                d.wait_for_change("k", 0, timeout=bad)
            self.assertIn("timeout", str(cm.exception))
            self.assertIn(repr(bad), str(cm.exception))
        for bad in ("1", b"1", [1], True, 1j):
            with self.assertRaises(TypeError) as cm:
                d.wait_for_change("k", 0, timeout=bad)
            self.assertIn("timeout", str(cm.exception))
            self.assertIn(type(bad).__name__, str(cm.exception))
        with self.assertRaises(shmdict.InvalidArgumentError):
            d.wait_for_change("k", -1, timeout=0)
        # Other real numbers are seconds too.
        self.assertFalse(d.wait_for_change("k", 0, timeout=fractions.Fraction(1, 100)))


class GetManyTest(TableTest):

    def test_values_defaults_and_order(self):
        d = self.open(max_value_size=4096)
        d["a"] = 1
        d["b"] = "x" * 1000  # longer than get_many's first buffers
        d["c"] = None
        self.assertEqual(d.get_many(["a", "missing", "b", "c"]),
                         [1, None, "x" * 1000, None])
        self.assertEqual(d.get_many(["missing", b"a"], default="dflt"), ["dflt", 1])
        self.assertEqual(d.get_many([]), [])
        self.assertEqual(d.get_many(iter(["a"])), [1])
        with self.assertRaises(TypeError):
            d.get_many([1])

    def test_many_keys(self):
        d = self.open(capacity=3000)
        for i in range(2000):
            d["k%d" % i] = i
        keys = ["k%d" % i for i in range(2100)]
        self.assertEqual(d.get_many(keys), list(range(2000)) + [None] * 100)


class CloseTest(TableTest):

    def test_closed_dict_raises_value_error(self):
        d = self.open()
        d["k"] = 1
        d.close()
        d.close()  # idempotent
        self.assertTrue(d.closed)
        self.assertIn("closed", repr(d))
        calls = [
            lambda: d["k"], lambda: d.get("k"), lambda: d.__setitem__("k", 1),
            lambda: d.__delitem__("k"), lambda: "k" in d, lambda: len(d),
            lambda: list(d), lambda: d.version("k"), lambda: d.increment("k"),
            lambda: d.compare_and_swap("k", 0, 1), lambda: d.get_many(["k"]),
            lambda: d.wait_for_change("k", 0, timeout=0), lambda: d.pop("k"),
            lambda: d.setdefault("k"), lambda: d.counter("k"), lambda: d.set("k", 1),
            lambda: d.get_with_version("k"), lambda: d.clear(), lambda: d.__enter__(),
        ]
        for call in calls:
            with self.assertRaises(ValueError) as cm:
                call()
            self.assertIsInstance(cm.exception, shmdict.ClosedError)
            self.assertIn("closed", str(cm.exception))
        # The table itself is still there.
        self.assertEqual(shmdict.SharedDict(self.name)["k"], 1)

    def test_context_manager_closes(self):
        with self.open() as d:
            d["k"] = 1
        self.assertTrue(d.closed)

    def test_close_while_other_threads_read(self):
        d = self.open()
        d["k"] = 1
        outcomes = []
        started = threading.Barrier(4)
        deadline = time.monotonic() + 10

        def read():
            started.wait()
            try:
                while time.monotonic() < deadline:
                    if d["k"] != 1:
                        outcomes.append("wrong value")
                outcomes.append("never closed")
            except shmdict.ClosedError:
                outcomes.append("closed")

        threads = [threading.Thread(target=read) for _ in range(3)]
        for t in threads:
            t.start()
        started.wait()
        time.sleep(0.05)
        d.close()
        for t in threads:
            t.join()
        self.assertEqual(outcomes, ["closed"] * 3)

    def test_unlink(self):
        d = self.open()
        d["k"] = 1
        d.unlink()
        self.assertFalse(os.path.exists(self.path))
        self.assertEqual(d["k"], 1, "open handles keep working after unlink")
        d.unlink(missing_ok=True)
        with self.assertRaises(shmdict.TableNotFoundError):
            d.unlink()
        with self.assertRaises(FileNotFoundError):
            shmdict.unlink(self.name)
        shmdict.unlink(self.name, missing_ok=True)


class CompatTest(TableTest):
    """shared_memory_dict's README, with only the import changed."""

    def test_readme(self):
        smd = SharedMemoryDict(name=self.name, size=1024)
        smd["some-key"] = "some-value-with-any-type"
        self.assertEqual(smd["some-key"], "some-value-with-any-type")
        existing_smd = SharedMemoryDict(name=self.name, size=1024)
        self.assertEqual(existing_smd["some-key"], "some-value-with-any-type")
        existing_smd["new-key"] = "some-value-with-any-type"
        self.assertEqual(smd["new-key"], "some-value-with-any-type")
        existing_smd.shm.close()
        self.assertTrue(existing_smd.closed)
        smd.shm.close()
        smd.shm.unlink()
        self.assertFalse(os.path.exists(self.path))

    def test_size_bounds_one_value_and_other_sizes_open_the_table(self):
        smd = SharedMemoryDict(self.name, 64, serializer=shmdict.BytesSerializer())
        self.addCleanup(smd.close)
        smd["k"] = b"v" * 64
        with self.assertRaises(ValueError):
            smd["k"] = b"v" * 65
        # Another size opens the table as it is.
        other = SharedMemoryDict(self.name, 4096, serializer=shmdict.BytesSerializer())
        self.addCleanup(other.cleanup)
        self.assertEqual(other["k"], b"v" * 64)
        self.assertEqual(smd.shm.name, self.path)
        with self.assertRaises(ValueError):
            SharedMemoryDict(self.name, 0)


# A program using the package as its users would, for mypy: every line that must be
# refused ends in "# error", and the revealed types must be those listed after it.
TYPED_USE = """
import math
import shmdict
from shmdict.compat import SharedMemoryDict

d = shmdict.SharedDict("t", capacity=10, serializer="json")
b = shmdict.SharedDict("t", key_type=bytes)
for k in d:
    reveal_type(k)
for kb in b:
    reveal_type(kb)
with d as e:
    reveal_type(e)
reveal_type(d.counter("k"))
reveal_type(d.wait_for_change("k", 0, timeout=math.inf))
reveal_type(d.popitem())
reveal_type(d.get_with_version(b"k"))
reveal_type(SharedMemoryDict("t", 64).shm.name)
shmdict.SharedDict("t", 10)  # error
d.wait_for_change("k", 0, timeout="1")  # error
d[1] = 2  # error
"""
TYPED_USE_REVEALS = [
    "builtins.str", "builtins.bytes", "shmdict._dict.SharedDict[builtins.str]",
    "builtins.int", "builtins.bool", "Tuple[builtins.str, Any]",
    "Tuple[Any, builtins.int]", "builtins.str",
]


@unittest.skipIf(SANITIZED, "sanitized build: libshmdict.so cannot be loaded into Python")
class TypingTest(unittest.TestCase):
    """The public API is fully annotated, and says so to type checkers (py.typed)."""

    def public_callables(self):
        for name in shmdict.__all__:
            obj = getattr(shmdict, name)
            if inspect.isfunction(obj):
                yield name, obj
            elif inspect.isclass(obj):
                # What a class inherits from SharedDict's core counts as its own. The
                # native core's methods are typed by the reference, the ctypes core
                # (shmdict/_native.pyi says so to type checkers; test_native_core_
                # matches_the_reference compares their signatures).
                members = {}
                for cls in reversed(obj.__mro__):
                    if cls.__module__ == "shmdict._native":
                        cls = _ctcore.Core
                    if cls.__module__.startswith("shmdict"):
                        members.update(vars(cls))
                for attr, member in members.items():
                    if attr.startswith("_") and not (attr.startswith("__")
                                                     and attr.endswith("__")):
                        continue
                    if isinstance(member, property):
                        member = member.fget
                    # Not what typing.Protocol adds (__subclasshook__, __init__).
                    if inspect.isfunction(member) and \
                            member.__module__.startswith("shmdict"):
                        yield "%s.%s" % (name, attr), member

    def test_native_core_matches_the_reference(self):
        if shmdict.backend != "native":
            self.skipTest("the native core is not in use")
        native_core = shmdict.SharedDict.__mro__[1]
        self.assertEqual(native_core.__module__, "shmdict._native")
        reference = _ctcore.Core
        public = [a for a in vars(reference) if not a.startswith("_")]
        primitives = [a for a in vars(reference) if a.startswith("_core_")]
        self.assertIn("get_many", public)
        self.assertIn("_core_snapshot", primitives)
        for attr in public + primitives + ["__getitem__", "__setitem__", "__delitem__",
                                           "__contains__"]:
            self.assertIn(attr, vars(native_core), attr)
        for attr in ("get", "get_many"):
            want = [(p.name, p.default) for p in
                    inspect.signature(getattr(reference, attr)).parameters.values()]
            got = [(p.name, p.default) for p in
                   inspect.signature(getattr(native_core, attr)).parameters.values()]
            self.assertEqual(got, want, attr)

    def test_the_package_is_marked_typed(self):
        package_dir = os.path.dirname(shmdict.__file__)
        self.assertTrue(os.path.isfile(os.path.join(package_dir, "py.typed")),
                        "py.typed must ship beside shmdict/__init__.py")

    def test_every_public_function_is_annotated(self):
        checked = set()
        for name, fn in self.public_callables():
            checked.add(name)
            signature = inspect.signature(fn)
            for param in signature.parameters.values():
                if param.name in ("self", "cls"):
                    continue
                self.assertIsNot(param.annotation, inspect.Parameter.empty,
                                 "%s: parameter %s has no type" % (name, param.name))
            self.assertIsNot(signature.return_annotation, inspect.Signature.empty,
                             "%s has no return type" % name)
            typing.get_type_hints(fn)  # every annotation names something real
        for name in ("SharedDict.__init__", "SharedDict.__getitem__", "SharedDict.get",
                     "SharedDict.wait_for_change", "SharedDict.get_many",
                     "SharedDict.path", "SharedMemoryDict.__init__", "unlink",
                     "JSONSerializer.dumps", "PickleSerializer.loads",
                     "Serializer.dumps"):
            self.assertIn(name, checked)

    @unittest.skipUnless(shutil.which("mypy"), "mypy is not installed")
    def test_mypy_strict_accepts_the_package_and_checks_its_users(self):
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(shmdict.__file__)))
        env = dict(os.environ, MYPYPATH=package_root)
        common = ["mypy", "--strict", "--cache-dir", os.devnull, "--no-error-summary"]
        cwd = package_root
        if os.path.basename(package_root) == "site-packages":
            # Installed (pip): mypy finds it as an installed typed package (PEP 561)
            # of this Python; it refuses site-packages in MYPYPATH.
            del env["MYPYPATH"]
            common += ["--python-executable", sys.executable]
            cwd = os.path.dirname(package_root)
        r = subprocess.run(common + ["-p", "shmdict"], env=env, capture_output=True,
                           text=True, cwd=cwd)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = subprocess.run(common + ["-c", TYPED_USE], env=env, capture_output=True,
                           text=True, cwd=cwd)
        lines = TYPED_USE.splitlines()
        reveals, error_lines = [], set()
        for line in r.stdout.splitlines():
            number = int(line.split(":")[1])
            if ": note: Revealed type is " in line:
                reveals.append(line.split('Revealed type is "')[1].rstrip('"'))
            elif ": error: " in line:
                error_lines.add(number)
        self.assertEqual(reveals, TYPED_USE_REVEALS, r.stdout)
        expected_errors = {i + 1 for i, line in enumerate(lines)
                           if line.endswith("# error")}
        self.assertEqual(error_lines, expected_errors, r.stdout)


@unittest.skipIf(SANITIZED, "sanitized build: libshmdict.so cannot be loaded into Python")
class LoadingTest(unittest.TestCase):

    def import_with(self, library):
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(shmdict.__file__)))
        env = dict(os.environ, SHMDICT_LIBRARY=library, PYTHONPATH=package_root)
        return subprocess.run([sys.executable, "-c", "import shmdict"], env=env,
                              capture_output=True, text=True)

    def test_missing_library_gives_a_clear_import_error(self):
        r = self.import_with("/nonexistent/libshmdict.so")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ImportError", r.stderr)
        self.assertIn("SHMDICT_LIBRARY", r.stderr)
        self.assertIn("/nonexistent/libshmdict.so (no such file)", r.stderr)
        self.assertIn("//api:libshmdict.so", r.stderr)

    def test_unloadable_library_gives_a_clear_import_error(self):
        r = self.import_with(os.path.abspath(__file__))  # not a shared library
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ImportError", r.stderr)
        self.assertIn("header", r.stderr)  # dlopen's "invalid ELF header"

    def test_library_from_the_environment_is_used(self):
        r = self.import_with(_clib.path)
        self.assertEqual(r.returncode, 0, r.stderr)

    def import_and_print(self, statement, **env):
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(shmdict.__file__)))
        env = dict(os.environ, PYTHONPATH=package_root, **env)
        for var in ("SHMDICT_FORCE_CTYPES", "SHMDICT_LIBRARY"):
            if var not in env or not env[var]:
                env.pop(var, None)
        r = subprocess.run([sys.executable, "-c", "import shmdict; " + statement],
                           env=env, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout.strip()

    def test_the_core_is_the_one_the_build_asked_for(self):
        if not EXPECTED_BACKEND:
            self.skipTest("SHMDICT_EXPECT_BACKEND is not set")
        self.assertEqual(shmdict.backend, EXPECTED_BACKEND,
                         "why not native: %s" % _engine.native_error)
        self.assertTrue(os.path.exists(shmdict.library_path), shmdict.library_path)

    def test_the_environment_chooses_ctypes(self):
        for env in ({"SHMDICT_FORCE_CTYPES": "1"}, {"SHMDICT_LIBRARY": _clib.path}):
            self.assertEqual(self.import_and_print("print(shmdict.backend)", **env),
                             "ctypes", env)
            self.assertEqual(self.import_and_print(
                "print(type(shmdict.SharedDict).__name__, "
                "shmdict.SharedDict.__mro__[1].__module__)", **env),
                "ABCMeta shmdict._ctcore", env)
        if shmdict.backend == "native":
            self.assertEqual(self.import_and_print(
                "print(shmdict.backend)", SHMDICT_FORCE_CTYPES="0"), "native")


if __name__ == "__main__":
    unittest.main()
