#!/usr/bin/python3
"""Django cache backends from several processes: shmdict.django.ShmdictCache against
Django's memcached backend (PyMemcacheCache), django-redis's RedisCache and
diskcache's DjangoCache.

Run with Debian's interpreter (/usr/bin/python3: python3-django 3.2, python3-pymemcache,
python3-django-redis, python3-diskcache). bench/run_all.sh starts memcached and
redis-server on loopback ports of its own and passes them here.

Workload: --keys keys ("bench:<i>"), each holding a 100-character str (pickled by
every backend alike), set once before timing. Then --procs processes, forked at
once, each time --ops gets of uniformly random present keys and then --ops sets of
random keys (new values of the same size), every operation timed on its own with
perf_counter_ns. Per backend and operation: the median and p99 over every operation
of every process, and the throughput of all processes together (operations over the
longest process's time). --reps repetitions, the backends interleaved; the figures
are the medians over repetitions. One JSON object per line on --out:
  {"suite": "django", "backend": ..., "op": "get"|"set", "procs": ..., "median_ns": ...,
   "p99_ns": ..., "ops_per_s": ..., "reps_median_ns": [...], ...}

diskcache's directory is on /dev/shm, its best case (no disk).

  django_cache_bench.py --memcached 127.0.0.1:PORT --redis 127.0.0.1:PORT
                        [--procs 8] [--keys 10000] [--ops 5000] [--reps 3] [--out FILE]
"""

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import tempfile
import time


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--memcached", required=True, help="host:port")
    p.add_argument("--redis", required=True, help="host:port")
    p.add_argument("--procs", type=int, default=8)
    p.add_argument("--keys", type=int, default=10000)
    p.add_argument("--ops", type=int, default=5000, help="gets (and sets) per process")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", default="-")
    p.add_argument("--backends", default="shmdict,memcached,redis,diskcache")
    a = p.parse_args()
    for name in ("procs", "keys", "ops", "reps"):
        if getattr(a, name) < 1:
            p.error("--%s must be at least 1" % name)
    return a


def configure(args, shm_name, disk_dir):
    from django.conf import settings
    caches = {
        "shmdict": {
            "BACKEND": "shmdict.django.ShmdictCache",
            "LOCATION": shm_name,
            "TIMEOUT": None,
            "OPTIONS": {"capacity": args.keys * 2, "max_key_size": 64,
                        "max_value_size": 256},
        },
        "memcached": {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": args.memcached,
            "TIMEOUT": None,
        },
        "redis": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://%s/0" % args.redis,
            "TIMEOUT": None,
        },
        "diskcache": {
            "BACKEND": "diskcache.DjangoCache",
            "LOCATION": disk_dir,
            "TIMEOUT": None,
        },
    }
    settings.configure(CACHES={k: v for k, v in caches.items()
                               if k in args.backends.split(",")} or {"default": {}})
    import django
    django.setup()


def key(i):
    return "bench:%d" % i


def value(i, revision):
    return ("%08d:%08d:" % (i, revision)).ljust(100, "v")


def worker(backend, args, seed, out):
    """One process: --ops timed gets, then --ops timed sets. Sends (get_ns, set_ns,
    get_wall_ns, set_wall_ns, misses) through `out`."""
    from django.core.cache import caches
    cache = caches[backend]
    rng = random.Random(seed)
    ids = [rng.randrange(args.keys) for _ in range(args.ops)]
    clock = time.perf_counter_ns
    get_ns = []
    misses = 0
    t0 = clock()
    for i in ids:
        s = clock()
        v = cache.get(key(i))
        get_ns.append(clock() - s)
        if v is None or not v.startswith("%08d:" % i):
            misses += 1
    get_wall = clock() - t0
    set_ns = []
    t0 = clock()
    for n, i in enumerate(ids):
        s = clock()
        cache.set(key(i), value(i, seed + n))
        set_ns.append(clock() - s)
    set_wall = clock() - t0
    out.send((get_ns, set_ns, get_wall, set_wall, misses))
    out.close()


def percentile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run_once(backend, args, rep):
    ctx = multiprocessing.get_context("fork")
    procs, pipes = [], []
    for p in range(args.procs):
        r, w = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=worker, args=(backend, args, rep * 1000 + p, w))
        proc.start()
        w.close()
        procs.append(proc)
        pipes.append(r)
    results = [r.recv() for r in pipes]
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            sys.exit("django_cache_bench: a %s worker failed (exit %s)" % (backend, proc.exitcode))
    out = {}
    for op, idx, wall_idx in (("get", 0, 2), ("set", 1, 3)):
        samples = sorted(x for res in results for x in res[idx])
        wall = max(res[wall_idx] for res in results)
        out[op] = {"median_ns": percentile(samples, 0.5), "p99_ns": percentile(samples, 0.99),
                   "ops_per_s": len(samples) / (wall / 1e9)}
    misses = sum(res[4] for res in results)
    if misses:
        sys.exit("django_cache_bench: %s: %d gets missed a key that was set" % (backend, misses))
    return out


def main():
    args = parse_args()
    shm_name = "shmdict-django-bench-%d" % os.getpid()
    disk_dir = tempfile.mkdtemp(prefix="shmdict-django-bench-diskcache-", dir="/dev/shm")
    try:
        configure(args, shm_name, disk_dir)
        from django.core.cache import caches
        backends = [b for b in args.backends.split(",") if b]
        for b in backends:
            cache = caches[b]
            cache.clear()
            for i in range(args.keys):
                cache.set(key(i), value(i, 0))
            if cache.get(key(0)) != value(0, 0):
                sys.exit("django_cache_bench: %s does not return what was set" % b)
            # Django and the clients open connections lazily: close them before forking,
            # so that every worker opens its own.
            cache.close()
        reps = {b: [] for b in backends}
        for rep in range(args.reps):
            for b in backends:
                reps[b].append(run_once(b, args, rep))
        out = sys.stdout if args.out == "-" else open(args.out, "w")
        for b in backends:
            for op in ("get", "set"):
                rs = [r[op] for r in reps[b]]
                out.write(json.dumps({
                    "suite": "django", "backend": b, "op": op, "procs": args.procs,
                    "keys": args.keys, "ops_per_proc": args.ops, "value_chars": 100,
                    "median_ns": statistics.median(r["median_ns"] for r in rs),
                    "p99_ns": statistics.median(r["p99_ns"] for r in rs),
                    "ops_per_s": statistics.median(r["ops_per_s"] for r in rs),
                    "reps_median_ns": [r["median_ns"] for r in rs],
                }) + "\n")
        if out is not sys.stdout:
            out.close()
    finally:
        shutil.rmtree(disk_dir, ignore_errors=True)
        try:
            import shmdict
            shmdict.unlink(shm_name, missing_ok=True)
        except Exception as e:  # the table may not have been created
            print("django_cache_bench: removing %s: %s" % (shm_name, e), file=sys.stderr)


if __name__ == "__main__":
    main()
