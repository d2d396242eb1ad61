"""SharedDict against multiprocessing.Manager().dict() and a plain dict.

    tools/bazel run -c opt //api/python:bench_shmdict            # the full table
    tools/bazel run -c opt //api/python:bench_shmdict -- --quick # a smoke run

For each table size (100 and 1M keys by default) every peer is filled with the same
keys ("key:00000042", 12 bytes) and values (a pickled 20-character str), then timed on
lookups (d[k]) and updates (d[k] = v) of existing keys in random order, all with the
same Python loop. The peers: a dict; SharedDict on each of its cores, the extension
module ("native") and ctypes over libshmdict.so, on one table; Manager().dict().
Besides: lookups in a table of the same bytes with serializer="bytes" (no unpickling),
and get_many of 64 keys at a time (the time per key). Each cell is the median of
--runs runs, in nanoseconds per operation; the runs of the peers are interleaved. The
Manager's proxy makes one round trip to its server process per operation, so it is
timed on fewer operations (--manager-ops). The end compares the results with the
targets of the Python package (docs/python.md, "Performance").
"""

import argparse
import gc
import multiprocessing
import os
import platform
import random
import secrets
import statistics
import sys
import time

import pickle

import shmdict
from shmdict import _ctcore, _dict

KEY = "key:%08d"
BATCH = 64


class CtypesSharedDict(_ctcore.Core, _dict.SharedDict):  # type: ignore[misc]
    """SharedDict on the ctypes core, in the same process as one on the native core:
    the ctypes core's methods come first."""


def value_of(i):
    return "value-%014d" % i  # 20 characters


def cpu_description():
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d vCPUs" % (model, os.cpu_count() or 0)


def time_get(d, keys):
    start = time.perf_counter_ns()
    for k in keys:
        d[k]
    return (time.perf_counter_ns() - start) / len(keys)


def time_set(d, keys, value):
    start = time.perf_counter_ns()
    for k in keys:
        d[k] = value
    return (time.perf_counter_ns() - start) / len(keys)


def time_get_many(d, batches):
    """ns per key of d.get_many over batches of keys."""
    start = time.perf_counter_ns()
    for batch in batches:
        d.get_many(batch)
    return (time.perf_counter_ns() - start) / sum(map(len, batches))


def fill(d, n, batch=None):
    if batch is None:
        for i in range(n):
            d[KEY % i] = value_of(i)
        return
    for start in range(0, n, batch):
        d.update({KEY % i: value_of(i) for i in range(start, min(n, start + batch))})


def bench_size(n, args, manager, rng):
    """{peer: {operation: ns}} and notes for a table of n keys. The peers' runs are
    interleaved (dict, SharedDict native, SharedDict ctypes, Manager, dict, ...) so
    that the noise of a shared machine falls on all of them alike."""
    notes = []
    sample = [KEY % rng.randrange(n) for _ in range(min(args.ops, 10 * n))]
    batches = [sample[i:i + BATCH] for i in range(0, len(sample) - BATCH + 1, BATCH)]
    new_value = value_of(0)

    plain = {}
    fill(plain, n)

    name = "shmdict-bench-%d-%s" % (os.getpid(), secrets.token_hex(4))
    raw_name = name + "-bytes"
    d = shmdict.SharedDict(name, capacity=max(n, 16), max_key_size=16,
                           max_value_size=64, exclusive=True)
    raw = shmdict.SharedDict(raw_name, capacity=max(n, 16), max_key_size=16,
                             max_value_size=64, exclusive=True, serializer="bytes")
    ct = CtypesSharedDict(name, create=False) if shmdict.backend == "native" else None
    m = manager.dict()
    try:
        fill(d, n)
        for i in range(n):
            raw[KEY % i] = pickle.dumps(value_of(i), pickle.HIGHEST_PROTOCOL)
        start = time.monotonic()
        filled = min(n, args.manager_max_keys)
        fill(m, filled, batch=50000)
        notes.append("Manager filled with %d keys in %.1f s (batched update)"
                     % (filled, time.monotonic() - start))
        # The Manager is timed on fewer operations, of keys that it holds.
        manager_sample = [KEY % rng.randrange(filled) for _ in range(args.manager_ops)]
        if filled < n:
            notes.append("Manager at %d keys: filled with %d keys only "
                         "(--manager-max-keys)" % (n, filled))
        shared = "SharedDict " + shmdict.backend
        peers = [("dict", plain, sample), (shared, d, sample)]
        if ct is not None:
            peers.append(("SharedDict ctypes", ct, sample))
        peers.append(("Manager().dict()", m, manager_sample))
        times = {peer: {} for peer, _, _ in peers}
        for _ in range(args.runs):
            for peer, mapping, keys in peers:
                t = times[peer]
                t.setdefault("get", []).append(time_get(mapping, keys))
                t.setdefault("set", []).append(time_set(mapping, keys, new_value))
                if peer.startswith("SharedDict"):
                    t.setdefault("get_many", []).append(time_get_many(mapping, batches))
                if peer == shared:
                    t.setdefault("get bytes", []).append(time_get(raw, keys))
        return {peer: {op: statistics.median(v) for op, v in t.items()}
                for peer, t in times.items()}, notes
    finally:
        for table in (ct, d, raw):
            if table is not None:
                table.close()
        shmdict.unlink(name, missing_ok=True)
        shmdict.unlink(raw_name, missing_ok=True)
        m.clear()


def human(n):
    if n >= 1000000 and n % 1000000 == 0:
        return "%dM" % (n // 1000000)
    if n >= 1000 and n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000000")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--ops", type=int, default=100000,
                        help="operations per run for dict and SharedDict")
    parser.add_argument("--manager-ops", type=int, default=2000,
                        help="operations per run for the Manager")
    parser.add_argument("--manager-max-keys", type=int, default=1000000,
                        help="fill the Manager with at most this many keys")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few operations: a smoke run")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.runs, args.ops, args.manager_ops = "100,10000", 3, 20000, 300
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(args.seed)

    print("machine: %s; Python %s; core %s (%s)" % (
        cpu_description(), platform.python_version(), shmdict.backend,
        shmdict.library_path))
    print("load average at start: %.2f %.2f %.2f" % os.getloadavg())
    print("values: pickled 20-character str; keys: 12 bytes; random existing keys; "
          "median of %d runs, ns per operation" % args.runs)
    print()
    gc.disable()
    table = {}
    notes = []
    with multiprocessing.Manager() as manager:
        for n in sizes:
            table[n], size_notes = bench_size(n, args, manager, rng)
            notes.extend(size_notes)
            print("bench: %s keys done" % human(n), file=sys.stderr, flush=True)

    shared = "SharedDict " + shmdict.backend
    peers = [p for p in table[sizes[0]] if p != "dict"]
    print("| operation | keys | dict | " + " | ".join(peers) + " | " +
          " | ".join("%s / dict" % p for p in peers if p.startswith("SharedDict")) + " |")
    print("|---|---:|---:|" + "---:|" * len(peers) +
          "---:|" * len([p for p in peers if p.startswith("SharedDict")]))
    for op in ("get", "set", "get bytes", "get_many"):
        for n in sizes:
            row = table[n]
            cells = ["%.0f" % row[p][op] if op in row[p] else "" for p in peers]
            ratios = ["%.1fx" % (row[p][op] / row["dict"]["get" if op != "set" else "set"])
                      if op in row[p] else "" for p in peers if p.startswith("SharedDict")]
            print("| %s | %s | %s | %s | %s |" % (
                op, human(n), "%.0f" % row["dict"][op] if op in row["dict"] else "",
                " | ".join(cells), " | ".join(ratios)))
    print()
    print("(get bytes: serializer=\"bytes\" on the same bytes, nothing unpickled; "
          "get_many: %d keys per call, ns per key; ratios are to the dict's get, or "
          "set)" % BATCH)
    print()
    small, large = table[sizes[0]], table[sizes[-1]]
    checks = [
        ("get at %s keys / dict get" % human(sizes[0]),
         small[shared]["get"] / small["dict"]["get"], "<=", 8),
        ("set at %s keys / dict set" % human(sizes[0]),
         small[shared]["set"] / small["dict"]["set"], "<=", 12),
        ("get bytes at %s keys / dict get" % human(sizes[0]),
         small[shared]["get bytes"] / small["dict"]["get"], "<=", 5),
        ("get_many per key at %s keys / get" % human(sizes[-1]),
         large[shared]["get_many"] / large[shared]["get"], "<=", 0.6),
    ]
    for n in sizes:
        for op in ("get", "set"):
            checks.append(("Manager %s / SharedDict %s at %s keys" % (op, op, human(n)),
                           table[n]["Manager().dict()"][op] / table[n][shared][op],
                           ">=", 150))
    print("| target (%s core) | measured | target | met |" % shmdict.backend)
    print("|---|---:|---:|---|")
    for what, value, cmp, target in checks:
        met = value <= target if cmp == "<=" else value >= target
        print("| %s | %.2fx | %s %gx | %s |" % (what, value, cmp, target,
                                                "yes" if met else "NO"))
    print()
    get_small = small[shared]["get"]
    get_large = large[shared]["get"]
    print("%s get at %s keys / at %s keys: %.2f" % (
        shared, human(sizes[-1]), human(sizes[0]), get_large / get_small))
    for note in notes:
        print("note: " + note)
    print("load average at end: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
