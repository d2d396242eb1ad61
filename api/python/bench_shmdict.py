"""SharedDict against multiprocessing.Manager().dict() and a plain dict.

    tools/bazel run -c opt //api/python:bench_shmdict            # the full table
    tools/bazel run -c opt //api/python:bench_shmdict -- --quick # a smoke run

For each table size (100, 10k, 1M keys) every peer is filled with the same keys
("key:00000042", 12 bytes) and values (a pickled 20-character str), then timed on
lookups (d[k]) and updates (d[k] = v) of existing keys in random order, all with the
same Python loop. Each cell is the median of --runs runs, in nanoseconds per
operation; the runs of the three peers are interleaved. The Manager's proxy makes one
round trip to its server process per operation, so it is timed on fewer operations
(--manager-ops).
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

import shmdict

KEY = "key:%08d"


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


def fill(d, n, batch=None):
    if batch is None:
        for i in range(n):
            d[KEY % i] = value_of(i)
        return
    for start in range(0, n, batch):
        d.update({KEY % i: value_of(i) for i in range(start, min(n, start + batch))})


def bench_size(n, args, manager, rng):
    """{peer: (get ns, set ns)} and notes for a table of n keys. The peers' runs are
    interleaved (dict, SharedDict, Manager, dict, ...) so that the noise of a shared
    machine falls on all three alike."""
    notes = []
    sample = [KEY % rng.randrange(n) for _ in range(min(args.ops, 10 * n))]
    new_value = value_of(0)

    plain = {}
    fill(plain, n)

    name = "shmdict-bench-%d-%s" % (os.getpid(), secrets.token_hex(4))
    d = shmdict.SharedDict(name, capacity=max(n, 16), max_key_size=16,
                           max_value_size=64, exclusive=True)
    m = manager.dict()
    try:
        fill(d, n)
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
        peers = [("dict", plain, sample), ("SharedDict", d, sample),
                 ("Manager().dict()", m, manager_sample)]
        times = {name: ([], []) for name, _, _ in peers}
        for _ in range(args.runs):
            for peer, mapping, keys in peers:
                times[peer][0].append(time_get(mapping, keys))
                times[peer][1].append(time_set(mapping, keys, new_value))
        return {peer: (statistics.median(g), statistics.median(s))
                for peer, (g, s) in times.items()}, notes
    finally:
        d.close()
        shmdict.unlink(name, missing_ok=True)
        m.clear()


def human(n):
    if n >= 1000000 and n % 1000000 == 0:
        return "%dM" % (n // 1000000)
    if n >= 1000 and n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,10000,1000000")
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

    print("machine: %s; Python %s; %s" % (cpu_description(), platform.python_version(),
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

    peers = ["dict", "SharedDict", "Manager().dict()"]
    print("| operation | keys | " + " | ".join(peers) +
          " | Manager / SharedDict | SharedDict / dict |")
    print("|---|---:|" + "---:|" * len(peers) + "---:|---:|")
    for op, index in (("get", 0), ("set", 1)):
        for n in sizes:
            row = table[n]
            cells = ["%.0f" % row[p][index] for p in peers]
            print("| %s | %s | %s | %.0fx | %.1fx |" % (
                op, human(n), " | ".join(cells),
                row["Manager().dict()"][index] / row["SharedDict"][index],
                row["SharedDict"][index] / row["dict"][index]))
    print()
    get_small = table[sizes[0]]["SharedDict"][0]
    get_large = table[sizes[-1]]["SharedDict"][0]
    print("SharedDict get at %s keys / at %s keys: %.2f" % (
        human(sizes[-1]), human(sizes[0]), get_large / get_small))
    for note in notes:
        print("note: " + note)
    print("load average at end: %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
