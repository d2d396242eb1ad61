"""Django's cache contract, run against shmdict.django.ShmdictCache and, as a control,
Django's own LocMemCache: each conformance test runs on both, so that it tests the
contract (Django's documentation of the low-level cache API and of BaseCache), not
shmdict. Then the backend's own rules (storage of ints, sizes, options, sharing).

Django is configured here with settings.configure(); every table and LocMem location
has a name unique to this test process, as Django's --parallel runner would need.
"""

import enum
import os
import pickle
import secrets
import sys
import threading
import time
import warnings
from unittest import mock

if __name__ == "__main__":  # run by Bazel: hand over to pytest, which imports this file
    import pytest_main
    sys.exit(pytest_main.main(__file__))

import pytest

SANITIZED = bool(os.environ.get("SHMDICT_SANITIZED"))
if SANITIZED:
    pytest.skip("sanitized build: libshmdict.so cannot be loaded into Python",
                allow_module_level=True)

import django  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core import signals  # noqa: E402
from django.core.cache import CacheKeyWarning, caches  # noqa: E402
from django.core.exceptions import ImproperlyConfigured  # noqa: E402

import shmdict  # noqa: E402
import shmdict.django  # noqa: E402
from shmdict.django import ShmdictCache  # noqa: E402

SUFFIX = "%d-%s" % (os.getpid(), secrets.token_hex(4))
TABLE = "shmdict-django-test-" + SUFFIX
SMALL_TABLE = "shmdict-django-small-" + SUFFIX
LOCMEM = "locmem-" + SUFFIX
TABLE_OPTIONS = {"capacity": 1000, "max_value_size": 16384}
# Short timeouts, checked with margins: the table expires keys up to ~16 ms late (its
# coarse clock), and a busy machine may delay any step of a test by far more than that.
SHORT = 0.25
PAST_SHORT = 0.45


def custom_key_func(key, key_prefix, version):
    """A key function other than Django's default (as in Django's own tests)."""
    return "CUSTOM-" + "-".join([key_prefix, str(version), key])


def raw_key_func(key, key_prefix, version):
    """Uses the key as it is, so that the key the backend sees is the one given."""
    return key


def aliases(backend, location, options):
    common = {"BACKEND": backend, "LOCATION": location}
    if options:
        common["OPTIONS"] = options
    return {
        "default": dict(common),
        "prefix": dict(common, KEY_PREFIX="cacheprefix"),
        "v2": dict(common, VERSION=2),
        "custom_key": dict(common, KEY_FUNCTION=custom_key_func),
        "custom_key2": dict(common, KEY_FUNCTION=custom_key_func),
        "raw_key": dict(common, KEY_FUNCTION=raw_key_func),
        "no_timeout": dict(common, TIMEOUT=None),
        "zero_timeout": dict(common, TIMEOUT=0),
    }


BACKENDS = {
    "locmem": ("django.core.cache.backends.locmem.LocMemCache", LOCMEM, None),
    "shmdict": ("shmdict.django.ShmdictCache", TABLE, TABLE_OPTIONS),
}

CACHES = {}
for _name, (_backend, _location, _options) in BACKENDS.items():
    for _alias, _config in aliases(_backend, _location, _options).items():
        CACHES["%s_%s" % (_name, _alias)] = _config
CACHES["default"] = CACHES["shmdict_default"]

settings.configure(CACHES=CACHES)
django.setup()


def remove_tables():
    for name in (TABLE, SMALL_TABLE):
        shmdict.unlink(name, missing_ok=True)


@pytest.fixture(scope="module", autouse=True)
def tables():
    yield
    remove_tables()


class Caches:
    """The aliases of one backend: c.default, c.prefix, c.v2, ..."""

    def __init__(self, backend):
        self.backend = backend
        for alias in aliases("", "", None):
            setattr(self, alias, caches["%s_%s" % (backend, alias)])


@pytest.fixture(params=list(BACKENDS))
def c(request):
    c = Caches(request.param)
    yield c
    c.default.clear()  # what Django's cache tests do after every test


@pytest.fixture
def cache(c):
    return c.default


# Values of module-level types, so that they pickle by reference.
class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __eq__(self, other):
        return type(other) is Point and (self.x, self.y) == (other.x, other.y)


class Color(enum.IntEnum):
    RED = 1


def a_function():
    return "called"


class Unpicklable:
    def __getstate__(self):
        raise pickle.PickleError("this object refuses to be pickled")


# --- get, set, add, delete ----------------------------------------------------------

def test_set_then_get(cache):
    assert cache.get("k") is None
    assert cache.get("k", "dflt") == "dflt"
    assert cache.set("k", "v") is None
    assert cache.get("k") == "v"
    cache.set("k", "w")
    assert cache.get("k") == "w"


def test_none_is_a_value_distinct_from_a_miss(cache):
    cache.set("n", None)
    assert cache.get("n") is None
    assert cache.get("n", "dflt") is None  # the stored None, not the default
    assert cache.has_key("n")
    assert "n" in cache
    assert cache.get_many(["n", "missing"]) == {"n": None}
    assert cache.add("n", 1) is False


@pytest.mark.parametrize("value", [
    0, 1, -1, 7, (1 << 63) - 1, -(1 << 63), 1 << 63, -(1 << 63) - 1, 10 ** 30,
    True, False, Color.RED, 1.0, 2.5, "", "a", "ab", "x" * 3000, b"", b"\x00" * 8,
    "\u6e05\u6c34 \U0001f600", [1, "a"], (1, 2), {"a": [1, {2}]}, frozenset({3}),
    None, Point(1, 2), a_function, Point, ValueError("boom").args,
])
def test_values_round_trip_with_their_type(cache, value):
    cache.set("v", value)
    got = cache.get("v")
    assert type(got) is type(value)
    assert got == value
    assert cache.get_many(["v"]) == {"v": value}
    if value is a_function:
        assert got() == "called"


def test_binary_and_unicode_keys_and_values(cache):
    stuff = {
        "ascii": "ascii_value",
        "unicode_ascii": "I\xf1t\xebrn\xe2ti\xf4n\xe0liz\xe6ti\xf8n1",
        "Iñtërnâtiônàlizætiøn": "Iñtërnâtiônàlizætiøn2",
        "ascii2": {"x": 1},
    }
    for key, value in stuff.items():
        cache.set(key, value)
        assert cache.get(key) == value
        assert cache.delete(key) is True
        assert cache.add(key, value) is True
        assert cache.get(key) == value
    cache.set_many(stuff)
    assert cache.get_many(list(stuff)) == stuff
    blob = bytes(range(256)) * 4
    cache.set("blob", blob)
    assert cache.get("blob") == blob


def test_add_only_when_absent(cache):
    assert cache.add("a", "first") is True
    assert cache.add("a", "second") is False
    assert cache.get("a") == "first"


def test_delete_returns_whether_the_key_was_there(cache):
    cache.set("d", 1)
    assert cache.delete("d") is True
    assert cache.get("d") is None
    assert cache.delete("d") is False
    assert cache.delete("never-set") is False


def test_has_key_and_in(cache):
    assert not cache.has_key("h")
    assert "h" not in cache
    cache.set("h", "x")
    assert cache.has_key("h")
    assert "h" in cache


def test_non_str_keys_go_through_make_key(cache):
    cache.set(42, "int key")
    assert cache.get(42) == "int key"
    assert cache.get("42") == "int key"  # the default key function formats it


# --- many ----------------------------------------------------------------------------

def test_get_many_omits_missing_keys(cache):
    cache.set_many({"a": "a", "b": None, "c": 3})
    assert cache.get_many(["a", "c", "d"]) == {"a": "a", "c": 3}
    assert cache.get_many(["b", "d"]) == {"b": None}
    assert cache.get_many(iter(["a", "b"])) == {"a": "a", "b": None}
    assert cache.get_many([]) == {}


def test_get_many_of_many_keys(cache):
    # Fewer than LocMemCache's default MAX_ENTRIES (300), past which it culls.
    data = {"key%d" % i: "value%d" % i * (i % 7) for i in range(250)}
    assert cache.set_many(data) == []
    keys = list(data) + ["absent%d" % i for i in range(50)]
    assert cache.get_many(keys) == data


def test_set_many_returns_an_empty_list_and_honours_the_timeout(cache):
    assert cache.set_many({"a": 1, "b": 2}, timeout=SHORT) == []
    assert cache.get_many(["a", "b"]) == {"a": 1, "b": 2}
    time.sleep(PAST_SHORT)
    assert cache.get_many(["a", "b"]) == {}


def test_set_many_with_zero_timeout_stores_nothing(cache):
    cache.set("a", "old")
    assert cache.set_many({"a": 1, "b": 2}, timeout=0) == []
    assert cache.get_many(["a", "b"]) == {}


def test_delete_many(cache):
    cache.set_many({"a": 1, "b": 2, "c": 3})
    assert cache.delete_many(["a", "b", "missing"]) is None
    assert cache.get_many(["a", "b", "c"]) == {"c": 3}


# --- incr / decr ---------------------------------------------------------------------

def test_incr_decr(cache):
    cache.set("answer", 41)
    assert cache.incr("answer") == 42
    assert cache.get("answer") == 42
    assert cache.incr("answer", 10) == 52
    assert cache.decr("answer") == 51
    assert cache.decr("answer", 100) == -49
    assert cache.get("answer") == -49
    assert type(cache.get("answer")) is int


def test_incr_decr_of_a_missing_key_raise_value_error(cache):
    with pytest.raises(ValueError):
        cache.incr("nope")
    with pytest.raises(ValueError):
        cache.decr("nope")
    assert not cache.has_key("nope")


@pytest.mark.parametrize("value", [None, "text", [1]])
def test_incr_of_a_value_that_is_not_a_number_raises_type_error(cache, value):
    cache.set("k", value)
    with pytest.raises(TypeError):
        cache.incr("k")
    with pytest.raises(TypeError):
        cache.decr("k")
    assert cache.get("k") == value


def test_incr_keeps_the_expiry(cache):
    cache.set("n", 1, timeout=SHORT)
    assert cache.incr("n") == 2
    assert cache.decr("n", 5) == -3
    time.sleep(PAST_SHORT)
    assert cache.get("n") is None
    with pytest.raises(ValueError):
        cache.incr("n")


def test_incr_of_an_expired_key_raises_value_error(cache):
    cache.set("n", 1, timeout=SHORT)
    time.sleep(PAST_SHORT)
    with pytest.raises(ValueError):
        cache.incr("n")


# --- expiry --------------------------------------------------------------------------

def test_expiration(cache):
    cache.set("expire1", "very quickly", SHORT)
    cache.set("expire2", "very quickly", SHORT)
    cache.set("expire3", "very quickly", SHORT)
    assert cache.get("expire1") == "very quickly"
    time.sleep(PAST_SHORT)
    assert cache.get("expire1") is None
    assert cache.add("expire2", "newvalue") is True  # over an expired key
    assert cache.get("expire2") == "newvalue"
    assert not cache.has_key("expire3")
    assert "expire3" not in cache
    assert cache.get_many(["expire1", "expire3"]) == {}


def test_float_timeout(cache):
    cache.set("f", "value", 0.35)
    assert cache.get("f") == "value"
    time.sleep(0.55)
    assert cache.get("f") is None


def test_touch(cache):
    cache.set("t", "value", timeout=SHORT)
    assert cache.touch("t", timeout=30) is True
    time.sleep(PAST_SHORT)
    assert cache.get("t") == "value"  # the new deadline holds
    assert cache.touch("t", timeout=None) is True
    assert cache.get("t") == "value"
    assert cache.touch("t", timeout=SHORT) is True
    time.sleep(PAST_SHORT)
    assert cache.get("t") is None
    assert cache.touch("t") is False  # expired: absent
    assert cache.touch("never-set") is False


def test_touch_with_the_default_timeout_keeps_the_value(cache):
    cache.set("t", "v", timeout=SHORT)
    assert cache.touch("t") is True  # default TIMEOUT: 300 s
    time.sleep(PAST_SHORT)
    assert cache.get("t") == "v"


def test_forever_timeout(cache):
    cache.set("forever", "value", timeout=None)
    assert cache.get("forever") == "value"
    assert cache.add("forever2", "value", timeout=None) is True
    assert cache.get("forever2") == "value"
    cache.set("t", "v", timeout=SHORT)
    cache.set("t", "v", timeout=None)  # a set without expiry drops the old one
    time.sleep(PAST_SHORT)
    assert cache.get("t") == "v"


def test_zero_timeout_expires_at_once(cache):
    cache.set("z", "old")
    cache.set("z", "value", timeout=0)
    assert cache.get("z") is None
    assert not cache.has_key("z")
    assert cache.add("z2", "value", timeout=0) is True
    assert cache.get("z2") is None
    cache.set("z3", "value")
    assert cache.touch("z3", timeout=0) is True
    assert cache.get("z3") is None
    assert cache.touch("z3", timeout=0) is False


def test_add_with_zero_timeout_fails_over_a_present_key(cache):
    cache.set("p", "kept")
    assert cache.add("p", "other", timeout=0) is False
    assert cache.get("p") == "kept"


def test_negative_timeout_expires_at_once(cache):
    cache.set("neg", "value", timeout=-1)
    assert cache.get("neg") is None
    cache.set("neg", "value")
    assert cache.touch("neg", timeout=-5) is True
    assert cache.get("neg") is None


def test_long_timeout(cache):
    year = 60 * 60 * 24 * 365
    cache.set("long", "value", timeout=year)
    assert cache.get("long") == "value"
    cache.set("longer", "value", timeout=year * 1000)
    assert cache.get("longer") == "value"
    assert cache.add("longest", "value", timeout=10 ** 12) is True
    assert cache.get("longest") == "value"
    cache.set("infinite", "value", timeout=float("inf"))
    assert cache.get("infinite") == "value"


def test_a_timeout_that_is_not_a_number_raises_type_error(cache):
    # (What is stored afterwards differs: LocMemCache stores the value, then fails to
    # compute its expiry; ShmdictCache writes nothing, see below.)
    with pytest.raises(TypeError):
        cache.set("k", "new", timeout="10")
    with pytest.raises(TypeError):
        cache.add("k2", "new", timeout=[10])


def test_default_timeout_of_the_settings(c):
    c.no_timeout.set("k", "v")
    assert c.no_timeout.get("k") == "v"
    c.zero_timeout.set("k", "v")
    assert c.zero_timeout.get("k") is None
    assert c.zero_timeout.add("k", "v") is True
    assert c.zero_timeout.get("k") is None


def test_has_key_honours_expiry(cache):
    cache.set("h", None, timeout=SHORT)
    assert cache.has_key("h")
    time.sleep(PAST_SHORT)
    assert not cache.has_key("h")


# --- get_or_set ----------------------------------------------------------------------

def test_get_or_set(cache):
    assert cache.get("projector") is None
    assert cache.get_or_set("projector", 42) == 42
    assert cache.get("projector") == 42
    assert cache.get_or_set("projector", 43) == 42
    assert cache.get_or_set("null", None) is None
    assert cache.get("null", "default") is None  # None was stored
    assert cache.get_or_set("callable", lambda: "made") == "made"
    assert cache.get("callable") == "made"


def test_get_or_set_with_a_version(c):
    cache = c.default
    assert cache.get_or_set("brian", 1979, version=2) == 1979
    assert cache.get("brian") is None
    assert cache.get("brian", version=2) == 1979
    assert cache.get_or_set("brian", 42, version=2) == 1979


def test_get_or_set_racing(cache):
    # Another process adds the key between get() and add(): the add fails and the
    # value read again is the other one. Patched by dotted path, as Django's tests do.
    target = type(cache).__module__ + "." + type(cache).__qualname__ + ".add"
    with mock.patch(target, return_value=False) as add:
        assert cache.get_or_set("race", "mine") == "mine"
    assert add.called


# --- clear, close --------------------------------------------------------------------

def test_clear_removes_every_key_of_every_alias(c):
    c.default.set("a", 1)
    c.prefix.set("b", 2)
    c.v2.set("c", 3)
    c.default.clear()
    assert c.default.get("a") is None
    assert c.prefix.get("b") is None
    assert c.v2.get("c") is None
    c.default.set("a", 4)  # usable afterwards
    assert c.default.get("a") == 4


def test_close_keeps_the_cache_usable(cache):
    cache.set("k", "v")
    cache.close()
    assert cache.get("k") == "v"
    signals.request_finished.send(sender=None)  # calls close() on every cache
    cache.set("k2", "v2")
    assert cache.get_many(["k", "k2"]) == {"k": "v", "k2": "v2"}


# --- key prefixes, key functions, versions: aliases sharing one store -------------

def test_prefix(c):
    c.default.set("somekey", "value")
    assert not c.prefix.has_key("somekey")
    c.prefix.set("somekey", "value2")
    assert c.default.get("somekey") == "value"
    assert c.prefix.get("somekey") == "value2"


def test_custom_key_func(c):
    c.default.set("answer1", 42)
    assert c.custom_key.get("answer1") is None
    assert c.custom_key2.get("answer1") is None
    c.custom_key.set("answer2", 42)
    assert c.default.get("answer2") is None
    assert c.custom_key.get("answer2") == 42
    assert c.custom_key2.get("answer2") == 42


def test_versioning_get_set(c):
    cache, v2 = c.default, c.v2
    cache.set("answer1", 42)
    assert cache.get("answer1") == 42
    assert cache.get("answer1", version=1) == 42
    assert cache.get("answer1", version=2) is None
    assert v2.get("answer1") is None
    assert v2.get("answer1", version=1) == 42
    cache.set("answer2", 42, version=2)
    assert cache.get("answer2") is None
    assert cache.get("answer2", version=2) == 42
    assert v2.get("answer2") == 42
    v2.set("answer3", 42)
    assert cache.get("answer3") is None
    assert cache.get("answer3", version=2) == 42
    v2.set("answer4", 42, version=1)
    assert cache.get("answer4") == 42
    assert v2.get("answer4") is None


def test_versioning_add_has_key_delete(c):
    cache, v2 = c.default, c.v2
    assert cache.add("answer1", 42, version=2) is True
    assert cache.add("answer1", 37, version=2) is False
    assert cache.add("answer1", 37, version=1) is True
    assert cache.get("answer1", version=1) == 37
    assert cache.get("answer1", version=2) == 42
    assert v2.add("answer2", 42) is True
    assert v2.add("answer2", 37) is False
    assert v2.get("answer2") == 42
    assert cache.has_key("answer1", version=2)
    assert not cache.has_key("answer2")
    assert cache.delete("answer1", version=2) is True
    assert cache.get("answer1", version=1) == 37
    assert cache.get("answer1", version=2) is None


def test_versioning_incr_decr(c):
    cache, v2 = c.default, c.v2
    cache.set("answer1", 37, version=1)
    cache.set("answer1", 42, version=2)
    assert cache.incr("answer1") == 38
    assert cache.incr("answer1", version=2) == 43
    assert cache.decr("answer1", version=2) == 42
    assert v2.incr("answer1") == 43
    assert cache.get("answer1", version=1) == 38
    assert cache.get("answer1", version=2) == 43


def test_versioning_get_many_set_many_delete_many(c):
    cache, v2 = c.default, c.v2
    cache.set_many({"ford1": 37, "arthur1": 42})
    assert cache.get_many(["ford1", "arthur1"]) == {"ford1": 37, "arthur1": 42}
    assert cache.get_many(["ford1", "arthur1"], version=2) == {}
    assert v2.get_many(["ford1", "arthur1"], version=1) == {"ford1": 37, "arthur1": 42}
    cache.set_many({"ford2": 37, "arthur2": 42}, version=2)
    assert cache.get_many(["ford2", "arthur2"]) == {}
    assert v2.get_many(["ford2", "arthur2"]) == {"ford2": 37, "arthur2": 42}
    v2.delete_many(["ford2"])
    assert v2.get_many(["ford2", "arthur2"]) == {"arthur2": 42}


def test_incr_version_and_decr_version(c):
    cache = c.default
    cache.set("answer", 42, version=2)
    assert cache.incr_version("answer", version=2) == 3
    assert cache.get("answer", version=2) is None
    assert cache.get("answer", version=3) == 42
    assert cache.decr_version("answer", version=3) == 2
    assert cache.get("answer", version=2) == 42
    with pytest.raises(ValueError):
        cache.incr_version("does_not_exist")


# --- key validation: warnings, never failures ------------------------------------

def operations(cache, key):
    """Every operation on key; each must warn once and work."""
    return [
        lambda: cache.set(key, "value"),
        lambda: cache.get(key),
        lambda: cache.add(key, "value"),
        lambda: cache.touch(key),
        lambda: cache.has_key(key),
        lambda: cache.set(key, 1),
        lambda: cache.incr(key),
        lambda: cache.decr(key),
        lambda: cache.get_or_set(key, "value"),
        lambda: cache.set_many({key: "value"}),
        lambda: cache.get_many([key]),
        lambda: cache.delete(key),
        lambda: cache.delete_many([key]),
    ]


def check_key_warns_and_works(cache, key, made, message):
    for op in operations(cache, key):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            op()
        key_warnings = [w for w in caught if issubclass(w.category, CacheKeyWarning)]
        assert len(key_warnings) >= 1
        assert str(key_warnings[0].message) == message % (made,)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheKeyWarning)
        cache.set(key, "kept")
        assert cache.get(key) == "kept"
        assert cache.get_many([key]) == {key: "kept"}


def test_invalid_key_characters_warn(c):
    key = "key with spaces and \u6e05"
    check_key_warns_and_works(
        c.raw_key, key, key,
        "Cache key contains characters that will cause errors if used with "
        "memcached: %r")


def test_invalid_key_length_warns(c):
    key = "a" * 250 + "\u6e05"  # 251 characters, 253 bytes of UTF-8
    check_key_warns_and_works(
        c.raw_key, key, key,
        "Cache key will cause errors if used with memcached: %r (longer than 250)")


def test_invalid_with_version_key_length_warns(c):
    key = "a" * 248  # ":1:" + 248 characters = 251
    check_key_warns_and_works(
        c.default, key, ":1:" + key,
        "Cache key will cause errors if used with memcached: %r (longer than 250)")


# ASCII keys memcached would refuse: the backend's quick check must send each of them
# to Django's own (which warns).
@pytest.mark.parametrize("key", ["ascii key", "tab\tkey", "del\x7fkey", "nul\x00key"])
def test_ascii_keys_memcached_refuses_warn(c, key):
    check_key_warns_and_works(
        c.raw_key, key, key,
        "Cache key contains characters that will cause errors if used with "
        "memcached: %r")


# --- pickling errors ---------------------------------------------------------------

def test_set_and_add_let_pickling_errors_through(cache):
    cache.set("u", "old")
    with pytest.raises(pickle.PickleError) as e:
        cache.set("u", Unpicklable())
    assert type(e.value) is pickle.PickleError
    assert "refuses" in str(e.value)
    assert cache.get("u") == "old"  # nothing was written
    with pytest.raises(pickle.PickleError):
        cache.add("u2", Unpicklable())
    assert not cache.has_key("u2")
    with pytest.raises(pickle.PickleError):
        cache.set_many({"u3": Unpicklable()})


def test_unpicklable_types_raise_what_pickle_raises(cache):
    with pytest.raises((TypeError, pickle.PicklingError, AttributeError)):
        cache.set("lock", threading.Lock())
    with pytest.raises((TypeError, pickle.PicklingError, AttributeError)):
        cache.set("lambda", lambda: 1)


# --- shmdict only: storage, sizes, options, sharing ------------------------------------

@pytest.fixture
def shm():
    cache = caches["shmdict_default"]
    yield cache
    cache.clear()


def raw(shm, key):
    """The bytes stored for key (default key function, version 1)."""
    return shm._table.get(shm.make_key(key))


def test_ints_are_stored_as_8_byte_counters(shm):
    shm.set("n", 5)
    assert raw(shm, "n") == (5).to_bytes(8, "little", signed=True)
    table = shmdict.SharedDict(TABLE)
    try:
        assert table.counter(shm.make_key("n")) == 5
        assert table.increment(shm.make_key("n"), 2) == 7  # another program's fetch-add
    finally:
        table.close()
    assert shm.get("n") == 7
    shm.set("big", 1 << 63)  # past int64: pickled
    assert len(raw(shm, "big")) != 8
    shm.set("yes", True)  # a bool stays a bool
    assert len(raw(shm, "yes")) != 8


def test_an_8_byte_pickle_is_never_read_as_an_int(shm):
    # CPython's protocol 4 and 5 pickles are 5 bytes long at most or 15 at least;
    # with a subclass's lower pickle_protocol, 8 bytes happen.
    class Protocol0Cache(ShmdictCache):
        pickle_protocol = 0

    cache = Protocol0Cache(TABLE, {"OPTIONS": dict(TABLE_OPTIONS)})
    assert len(pickle.dumps("ab", 0)) == 8
    cache.set("s", "ab")
    assert raw(shm, "s") == pickle.dumps("ab", 0) + b"\0"
    assert cache.get("s") == "ab"
    assert shm.get("s") == "ab"
    with pytest.raises(TypeError):
        cache.incr("s")
    cache.set("n", 12345678)
    assert cache.get("n") == 12345678


def test_incr_takes_ints_only_and_never_wraps(shm):
    shm.set("f", 1.5)
    with pytest.raises(TypeError) as e:
        shm.incr("f")
    assert "float" in str(e.value)
    shm.set("n", 1)
    with pytest.raises(TypeError):
        shm.incr("n", 1.5)
    shm.set("max", (1 << 63) - 2)
    assert shm.incr("max") == (1 << 63) - 1
    with pytest.raises(OverflowError):
        shm.incr("max")
    assert shm.get("max") == (1 << 63) - 1  # left as it was
    with pytest.raises(OverflowError):
        shm.incr("max", 1 << 64)


def test_an_oversized_value_deletes_the_old_one_and_raises(shm):
    shm.set("k", "small")
    with pytest.raises(shmdict.TooBigError) as e:
        shm.set("k", "x" * 20000)
    assert isinstance(e.value, ValueError)
    assert shm.get("k") is None  # no stale value stays
    shm.set("k2", "small")
    with pytest.raises(ValueError):
        shm.add("k3", "x" * 20000)
    assert shm.set_many({"k2": "x" * 20000, "k4": "fits"}) == ["k2"]
    assert shm.get_many(["k2", "k4"]) == {"k4": "fits"}


def test_get_many_over_several_batches(shm):
    data = {"key%d" % i: "value%d" % i * (i % 7) for i in range(700)}
    assert shm.set_many(data) == []
    keys = ["absent%d" % i for i in range(50)] + list(data)
    assert shm.get_many(keys) == data


def test_a_bad_timeout_writes_nothing(shm):
    shm.set("k", "old")
    for timeout in ("10", [10], float("nan")):
        with pytest.raises((TypeError, ValueError)):
            shm.set("k", "new", timeout=timeout)
        with pytest.raises((TypeError, ValueError)):
            shm.add("k2", "new", timeout=timeout)
        with pytest.raises((TypeError, ValueError)):
            shm.touch("k", timeout=timeout)
    assert shm.get("k") == "old"
    assert not shm.has_key("k2")


def test_a_key_over_max_key_size(shm):
    long_key = "k" * 600  # ":1:" + 600 bytes > 512
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheKeyWarning)
        with pytest.raises(shmdict.TooBigError):
            shm.set(long_key, 1)
        assert shm.get(long_key, "dflt") == "dflt"
        assert shm.get_many([long_key]) == {}
        assert not shm.has_key(long_key)
        assert shm.delete(long_key) is False
        assert shm.touch(long_key) is False
        with pytest.raises(ValueError):
            shm.incr(long_key)


def test_aliases_with_one_location_share_one_table(shm):
    names = ["default", "prefix", "v2", "custom_key", "raw_key"]
    tables = {id(caches["shmdict_" + n]._table) for n in names}
    assert len(tables) == 1
    # A new instance (Django makes one per thread) reuses it too.
    again = ShmdictCache(TABLE, {"OPTIONS": dict(TABLE_OPTIONS)})
    assert again._table is shm._table
    shm.close()
    assert not shm._table.closed


def test_clear_keeps_versions_growing(shm):
    shm.set("k", 1)
    before = shm._table.version(shm.make_key("k"))
    shm.clear()
    assert shm._table.version(shm.make_key("k")) == 0
    shm.set("k", 2)
    assert shm._table.version(shm.make_key("k")) > before


def make(location, **options):
    return ShmdictCache(location, {"OPTIONS": options})


def test_a_subclass_validate_key_sees_every_key():
    seen = []

    class Strict(ShmdictCache):
        def validate_key(self, key):
            seen.append(key)
            super().validate_key(key)

    strict = Strict(TABLE, {"OPTIONS": dict(TABLE_OPTIONS)})
    strict.set("plain", 1)
    assert strict.get("plain") == 1
    assert seen == [":1:plain", ":1:plain"]


def test_bad_options_are_refused_clearly():
    with pytest.raises(ImproperlyConfigured, match="LOCATION"):
        ShmdictCache("", {})
    with pytest.raises(ImproperlyConfigured, match="unknown OPTIONS 'capacty'"):
        make(SMALL_TABLE, capacty=10)
    for name in ("MAX_ENTRIES", "CULL_FREQUENCY"):
        with pytest.raises(ImproperlyConfigured, match=name):
            make(SMALL_TABLE, **{name: 10})
    with pytest.raises(shmdict.InvalidArgumentError, match="eviction"):
        make(SMALL_TABLE, eviction="lru")
    assert not os.path.exists("/dev/shm/" + SMALL_TABLE)
    caches["shmdict_default"].get("k")  # the table exists
    with pytest.raises(shmdict.InvalidArgumentError):
        make(TABLE, capacity=1000, max_value_size=100)  # unlike the existing table


def test_a_full_table_evicts_by_default(tmp_path):
    path = str(tmp_path / "evicting")
    cache = make(path, capacity=8, max_value_size=64)
    for i in range(200):
        cache.set("key%d" % i, i)  # never TableFullError
        assert cache.get("key%d" % i) == i  # the latest write is always there
    present = sum(cache.has_key("key%d" % i) for i in range(200))
    assert 8 <= present < 200


def test_a_full_table_without_eviction_raises_a_value_error(tmp_path):
    path = str(tmp_path / "not-evicting")
    cache = make(path, capacity=8, max_value_size=64, eviction="none")
    with pytest.raises(shmdict.TableFullError) as e:
        for i in range(200):
            cache.set("key%d" % i, i)
    assert isinstance(e.value, ValueError)
    assert cache.set_many({"another%d" % i: i for i in range(200)}) != []
