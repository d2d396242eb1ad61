"""SharedDict as a cache: per-key expiry (set/add with ttl, touch, ttl, sweep),
increment(if_present=True), clear, and the eviction policy of a full table."""

import fractions
import math
import os
import secrets
import sys
import time
from decimal import Decimal
from unittest import mock

if __name__ == "__main__":  # run by Bazel: hand over to pytest, which imports this file
    import pytest_main
    sys.exit(pytest_main.main(__file__))

import pytest

if os.environ.get("SHMDICT_SANITIZED"):
    pytest.skip("sanitized build: libshmdict.so cannot be loaded into Python",
                allow_module_level=True)

import shmdict  # noqa: E402
from shmdict import _clib, _dict  # noqa: E402

# Short timeouts, checked with margins: the table expires keys up to ~16 ms late (its
# coarse clock), and a busy machine may delay any step of a test by far more than that.
SHORT = 0.25
PAST_SHORT = 0.45


@pytest.fixture
def name():
    n = "shmdict-pyexp-%d-%s" % (os.getpid(), secrets.token_hex(6))
    yield n
    shmdict.unlink(n, missing_ok=True)


@pytest.fixture
def d(name):
    d = shmdict.SharedDict(name, capacity=100, max_key_size=32, max_value_size=128)
    yield d
    d.close()


# --- ttl arguments -------------------------------------------------------------------

@pytest.mark.parametrize("ttl, ms", [
    (None, 0), (1, 1000), (2.5, 2500), (0.1, 100), (0.3, 300), (0.001, 1),
    (0.0015, 2), (0.0001, 1), (1e-9, 1), (5e-324, 1), (fractions.Fraction(1, 3), 334),
    (86400 * 365 * 100, 86400 * 365 * 100 * 1000),
    (4398046511, 4398046511000),  # the longest whole number of seconds: 2^42 ms
    (4398046510.9999, 4398046511000), (4398046511.0, 4398046511000),
    (4398046511.104, 1 << 42),
])
def test_ttl_seconds_become_milliseconds_rounded_up(ttl, ms):
    assert _dict._ttl_ms(ttl) == ms


@pytest.mark.parametrize("ttl", [0, 0.0, -0.0, -1, -0.5, math.nan, math.inf, -math.inf,
                                 4398046512, 4398046511.105, 10 ** 20, 1e30])
def test_bad_ttl_values_raise_value_error(d, ttl):
    with pytest.raises(ValueError, match="ttl"):
        d.set("k", 1, ttl=ttl)
    with pytest.raises(ValueError, match="ttl"):
        d.add("k", 1, ttl=ttl)
    d["k"] = 1
    with pytest.raises(ValueError, match="ttl"):
        d.touch("k", ttl=ttl)
    assert d.ttl("k") is None  # nothing changed


@pytest.mark.parametrize("ttl", [True, False, "1", b"1", Decimal("1"), [1]])
def test_ttl_of_another_type_raises_type_error(d, ttl):
    with pytest.raises(TypeError, match="ttl must be a number of seconds"):
        d.set("k", 1, ttl=ttl)
    with pytest.raises(TypeError):
        d.add("k", 1, ttl=ttl)
    with pytest.raises(TypeError):
        d.touch("k", ttl=ttl)
    assert "k" not in d


# --- set, get, expiry ----------------------------------------------------------------

def test_an_expired_key_is_absent_everywhere(d):
    d["keep"] = "kept"
    version = d.set("gone", "soon", ttl=SHORT)
    assert version > 0
    assert d["gone"] == "soon"
    assert d.version("gone") == version
    time.sleep(PAST_SHORT)
    assert d.get("gone", "dflt") == "dflt"
    with pytest.raises(KeyError):
        d["gone"]
    assert "gone" not in d
    assert len(d) == 1
    assert list(d) == ["keep"]
    assert dict(d.items()) == {"keep": "kept"}
    assert d.get_many(["gone", "keep"], "dflt") == ["dflt", "kept"]
    assert d.version("gone") == 0
    assert d.get_with_version("gone") == (None, 0)
    with pytest.raises(KeyError):
        del d["gone"]
    with pytest.raises(shmdict.KeyNotFoundError):
        d.ttl("gone")


def test_set_without_ttl_removes_the_expiry(d):
    d.set("a", 1, ttl=SHORT)
    d.set("a", 2)
    d.set("b", 1, ttl=SHORT)
    d["b"] = 2
    time.sleep(PAST_SHORT)
    assert d["a"] == 2 and d["b"] == 2
    assert d.ttl("a") is None and d.ttl("b") is None


def test_ttl_reports_the_time_left(d):
    d["forever"] = 1
    assert d.ttl("forever") is None
    d.set("k", 1, ttl=10)
    left = d.ttl("k")
    assert isinstance(left, float)
    assert 9 < left <= 10
    d.set("tiny", 1, ttl=1e-6)  # 1 ms, never 0 ("never expires")
    try:
        assert d.ttl("tiny") == 0.001
    except shmdict.KeyNotFoundError:
        pass  # already expired: fine, it did expire
    with pytest.raises(shmdict.KeyNotFoundError):
        d.ttl("absent")


# --- add ----------------------------------------------------------------------------

def test_add_only_if_absent_or_expired(d):
    assert d.add("k", "first") is True
    assert d.add("k", "second") is False
    assert d["k"] == "first"
    d.set("e", "old", ttl=SHORT)
    assert d.add("e", "new", ttl=SHORT) is False
    time.sleep(PAST_SHORT)
    assert d.add("e", "new", ttl=30) is True
    assert d["e"] == "new"
    assert 29 < d.ttl("e") <= 30


ctypes_core_only = pytest.mark.skipif(
    shmdict.backend != "ctypes",
    reason="a test of the ctypes core: it replaces functions of shmdict._clib")


@ctypes_core_only
def test_add_without_set_in_the_library_falls_back_to_insert(d):
    with mock.patch.object(_clib, "set_", None):
        assert d.add("k", 1) is True
        assert d.add("k", 2) is False
        with pytest.raises(shmdict.UnsupportedError, match="shmdict_set"):
            d.add("k2", 1, ttl=1)
        with pytest.raises(shmdict.UnsupportedError, match="shmdict_set"):
            d.set("k2", 1, ttl=1)
        assert d.set("k2", 1) > 0  # no ttl: shmdict_put
    assert d["k"] == 1


# --- touch --------------------------------------------------------------------------

def test_touch_sets_a_new_expiry_and_keeps_the_value(d):
    v1 = d.set("k", "value", ttl=SHORT)
    assert d.touch("k", ttl=30) is True
    assert d.version("k") > v1
    time.sleep(PAST_SHORT)
    assert d["k"] == "value"
    assert d.touch("k") is True  # None: never
    assert d.ttl("k") is None
    assert d.touch("k", SHORT) is True
    time.sleep(PAST_SHORT)
    assert "k" not in d
    assert d.touch("k", 30) is False  # expired
    assert d.touch("absent") is False
    assert "absent" not in d


# --- clear, sweep --------------------------------------------------------------------

def test_clear_erases_everything_and_versions_keep_growing(d):
    versions = {}
    for i in range(50):
        versions[i] = d.set("k%d" % i, i, ttl=None if i % 2 else 30)
    d.clear()
    assert len(d) == 0
    assert list(d) == []
    assert all(d.version("k%d" % i) == 0 for i in range(50))
    for i in range(50):
        assert d.set("k%d" % i, -i) > versions[i]
    assert len(d) == 50
    d.clear()
    d.clear()  # on an empty table
    assert len(d) == 0


@ctypes_core_only
def test_clear_goes_through_shmdict_clear(d):
    d["a"] = 1
    calls = []
    real = _clib.clear

    def spy(h):
        calls.append(h)
        return real(h)

    with mock.patch.object(_clib, "clear", spy), \
            mock.patch.object(_clib, "foreach", None):  # no scan
        d.clear()
    assert len(calls) == 1
    assert "a" not in d


def test_sweep_erases_the_expired_entries(d):
    for i in range(10):
        d.set("short%d" % i, i, ttl=SHORT)
    for i in range(5):
        d.set("long%d" % i, i, ttl=60)
        d["forever%d" % i] = i
    assert d.sweep() == 0
    time.sleep(PAST_SHORT)
    assert d.sweep() == 10
    assert d.sweep() == 0
    assert len(d) == 10
    assert sorted(d) == sorted(["long%d" % i for i in range(5)] +
                               ["forever%d" % i for i in range(5)])


# --- increment ----------------------------------------------------------------------

def test_increment_if_present(d):
    with pytest.raises(shmdict.KeyNotFoundError):
        d.increment("c", 5, if_present=True)
    assert "c" not in d  # nothing written
    assert d.increment("c", 5) == 5  # absent: from 0
    assert d.increment("c", 2, if_present=True) == 7
    assert d.counter("c") == 7


def test_increment_keeps_the_expiry(d):
    b = shmdict.SharedDict(d.path, serializer="bytes")
    try:
        b.set("n", (10).to_bytes(8, "little", signed=True), ttl=SHORT)
        assert b.increment("n", 1, if_present=True) == 11
        assert b.increment("n") == 12
        left = b.ttl("n")
        assert left is not None and left <= SHORT
        time.sleep(PAST_SHORT)
        with pytest.raises(shmdict.KeyNotFoundError):
            b.increment("n", if_present=True)
        assert b.increment("n", 3) == 3  # expired: from 0, with no expiry
        assert b.ttl("n") is None
    finally:
        b.close()


# --- eviction ------------------------------------------------------------------------

def test_table_full_error_is_a_value_error():
    assert issubclass(shmdict.TableFullError, ValueError)
    assert issubclass(shmdict.TableFullError, shmdict.Error)


def test_a_full_table_without_eviction_raises(name):
    d = shmdict.SharedDict(name, capacity=8, max_key_size=16, max_value_size=16)
    try:
        with pytest.raises(shmdict.TableFullError) as e:
            for i in range(1000):
                d["k%d" % i] = i
        assert isinstance(e.value, ValueError)
        assert e.value.code == _clib.EFULL
        stored = i
        assert len(d) == stored
        assert all(d["k%d" % j] == j for j in range(stored))  # nothing evicted
        with pytest.raises(ValueError):
            for i in range(1000):
                d.add("a%d" % i, i)
    finally:
        d.close()


def test_eviction_lrs_evicts_instead_of_raising(name):
    d = shmdict.SharedDict(name, capacity=8, max_key_size=16, max_value_size=16,
                           eviction="lrs")
    try:
        for i in range(1000):
            d["k%d" % i] = i
            assert d["k%d" % i] == i  # the new key is always stored
            assert d.add("a%d" % i, i) is True
        n = len(d)
        assert 8 <= n < 2000
        assert d.increment("counter") == 1  # fetch-add evicts too
    finally:
        d.close()


def test_eviction_option_is_checked(name):
    with pytest.raises(shmdict.InvalidArgumentError, match="eviction"):
        shmdict.SharedDict(name, eviction="lru")
    with pytest.raises(shmdict.InvalidArgumentError):
        shmdict.SharedDict(name, eviction=1)
    assert not os.path.exists("/dev/shm/" + name)
    lrs = shmdict.SharedDict(name, capacity=8, eviction="lrs")
    try:
        shmdict.SharedDict(name, eviction="lrs").close()  # matches
        shmdict.SharedDict(name).close()  # None accepts the table's policy
    finally:
        lrs.close()
    shmdict.unlink(name)
    none = shmdict.SharedDict(name, capacity=8, eviction="none")
    try:
        with pytest.raises(shmdict.InvalidArgumentError):
            shmdict.SharedDict(name, eviction="lrs")
    finally:
        none.close()


# --- closed and read-only -------------------------------------------------------------

def test_new_methods_on_a_closed_dict_raise_closed_error(d):
    d.close()
    for call in (lambda: d.set("k", 1, ttl=1), lambda: d.add("k", 1),
                 lambda: d.touch("k", 1), lambda: d.ttl("k"), lambda: d.sweep(),
                 lambda: d.clear(), lambda: d.increment("k", if_present=True)):
        with pytest.raises(shmdict.ClosedError):
            call()


def test_read_only_writes_raise_permission_error(d, name):
    d.set("k", 1, ttl=60)
    r = shmdict.SharedDict(name, read_only=True)
    try:
        assert 59 < r.ttl("k") <= 60
        for call in (lambda: r.set("k", 2, ttl=1), lambda: r.add("n", 1),
                     lambda: r.touch("k", 1), lambda: r.sweep(), lambda: r.clear(),
                     lambda: r.increment("c", if_present=True)):
            with pytest.raises(shmdict.PermissionDeniedError):
                call()
    finally:
        r.close()
    assert d["k"] == 1
