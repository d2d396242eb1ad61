"""shmdict.django.ShmdictCache across processes, as the workers of one server use it:

1. Four forked workers incr one key 2,000 times each: the total is exact, every value
   is handed out once, and the key keeps its expiry.
2. Workers share what they store: a value set by the parent is read by every worker,
   values set by workers are read by the parent, of several workers add()ing one key
   exactly one succeeds, and clear() in one worker empties the cache for all.
3. A separate program that configures Django with the same LOCATION reads and writes
   the same cache.

Each test has a deadline.
"""

import os
import secrets
import subprocess
import sys
import textwrap
import time

if __name__ == "__main__":  # run by Bazel: hand over to pytest, which imports this file
    import pytest_main
    sys.exit(pytest_main.main(__file__))

import multiprocessing

import pytest

if os.environ.get("SHMDICT_SANITIZED"):
    pytest.skip("sanitized build: libshmdict.so cannot be loaded into Python",
                allow_module_level=True)

import django  # noqa: E402
from django.conf import settings  # noqa: E402

import shmdict  # noqa: E402

TABLE = "shmdict-django-mp-%d-%s" % (os.getpid(), secrets.token_hex(4))
OPTIONS = {"capacity": 1000, "max_value_size": 1024}
settings.configure(CACHES={
    "default": {"BACKEND": "shmdict.django.ShmdictCache", "LOCATION": TABLE,
                "OPTIONS": OPTIONS},
    "other": {"BACKEND": "shmdict.django.ShmdictCache", "LOCATION": TABLE,
              "OPTIONS": OPTIONS, "KEY_PREFIX": "other"},
})
django.setup()

from django.core.cache import caches  # noqa: E402

fork = multiprocessing.get_context("fork")
DEADLINE_S = 30
WORKERS = 4
INCREMENTS = 2000


@pytest.fixture
def cache():
    cache = caches["default"]
    cache.clear()
    yield cache
    cache.clear()


@pytest.fixture(scope="module", autouse=True)
def table():
    yield
    shmdict.unlink(TABLE, missing_ok=True)


def run_workers(target, args_of, n=WORKERS):
    """Starts n forked workers target(*args_of(i), queue) and returns what each put
    on the queue, in worker order; every worker must exit 0 before the deadline."""
    queue = fork.Queue()
    workers = [fork.Process(target=target, args=args_of(i) + (queue,)) for i in range(n)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + DEADLINE_S
    results = {}
    try:
        while len(results) < n:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "workers did not finish within %d s" % DEADLINE_S
            i, result = queue.get(timeout=remaining)
            results[i] = result
        for w in workers:
            w.join(max(0.1, deadline - time.monotonic()))
            assert w.exitcode == 0, "worker exited with %r" % (w.exitcode,)
    finally:
        for w in workers:
            if w.is_alive():
                w.kill()
                w.join()
    return [results[i] for i in range(n)]


# --- 1. incr is atomic ---------------------------------------------------------------

def count(i, queue):
    cache = caches["default"]
    queue.put((i, [cache.incr("hits") for _ in range(INCREMENTS)]))


def test_incr_is_atomic_across_processes(cache):
    cache.set("hits", 0, timeout=60)
    results = run_workers(count, lambda i: (i,))
    handed_out = sorted(v for values in results for v in values)
    assert handed_out == list(range(1, WORKERS * INCREMENTS + 1))
    assert cache.get("hits") == WORKERS * INCREMENTS
    left = cache._table.ttl(cache.make_key("hits"))
    assert left is not None and 0 < left <= 60  # incr kept the expiry


# --- 2. shared values ----------------------------------------------------------------

def share(i, queue):
    cache, other = caches["default"], caches["other"]
    seen = cache.get("from-parent")
    cache.set("from-worker-%d" % i, {"worker": i, "pid": os.getpid()})
    other.set("other-%d" % i, i * 10)
    won = cache.add("winner", i)
    queue.put((i, (seen, won)))


def test_workers_share_what_they_store(cache):
    cache.set("from-parent", ["a", 1, None])
    results = run_workers(share, lambda i: (i,))
    assert [seen for seen, _ in results] == [["a", 1, None]] * WORKERS
    winners = [i for i, (_, won) in enumerate(results) if won]
    assert len(winners) == 1
    assert cache.get("winner") == winners[0]
    for i in range(WORKERS):
        assert cache.get("from-worker-%d" % i)["worker"] == i
        assert caches["other"].get("other-%d" % i) == i * 10
        assert cache.get("other-%d" % i) is None  # another KEY_PREFIX


def clear_then_report(i, queue):
    cache = caches["default"]
    if i == 0:
        cache.clear()
    queue.put((i, None))


def test_clear_in_one_worker_empties_the_cache_for_all(cache):
    cache.set_many({"k%d" % i: i for i in range(20)})
    caches["other"].set("o", 1)
    run_workers(clear_then_report, lambda i: (i,), n=1)
    assert cache.get_many(["k%d" % i for i in range(20)]) == {}
    assert caches["other"].get("o") is None


def expire_in_worker(i, queue):
    cache = caches["default"]
    queue.put((i, (cache.get("short"), cache.touch("short", 60))))


def test_expiry_is_the_same_for_every_process(cache):
    cache.set("short", "v", timeout=0.1)
    time.sleep(0.3)
    assert run_workers(expire_in_worker, lambda i: (i,), n=2) == [(None, False)] * 2


# --- 3. another program --------------------------------------------------------------

PROGRAM = textwrap.dedent("""
    import sys
    import django
    from django.conf import settings
    settings.configure(CACHES={"default": {
        "BACKEND": "shmdict.django.ShmdictCache", "LOCATION": sys.argv[1],
        "OPTIONS": {"capacity": 1000, "max_value_size": 1024}}})
    django.setup()
    from django.core.cache import cache
    print(repr(cache.get("from-test")))
    cache.set("from-program", {"answer": 42})
    print(cache.incr("n", 5))
""")


def test_another_program_with_the_same_location_shares_the_cache(cache):
    cache.set("from-test", (1, "two"))
    cache.set("n", 10)
    r = subprocess.run([sys.executable, "-c", PROGRAM, TABLE], capture_output=True,
                       text=True, timeout=DEADLINE_S)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["(1, 'two')", "15"]
    assert cache.get("from-program") == {"answer": 42}
    assert cache.get("n") == 15
