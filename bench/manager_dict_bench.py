#!/usr/bin/env python3
"""Python's multiprocessing.Manager().dict() as a peer of shmdict.

The same keys and values as bench/peer_bench.cc (bench/workload.h): key number i is
the 16 hex digits of splitmix64's finalizer of i; a table of n keys holds [0, n), keys
[n, 2n) are absent; a value of key i is 64 bytes of 8-byte words stamped
(i << 32 | revision). Every operation is one call through the manager's proxy (a
round trip to the manager process over a local socket), timed with perf_counter_ns.
Gets are timed as throughput (a precomputed list of keys) and as a dependent chain, as
peer_bench times them (bench/workload.h): the next key's position comes from the value
just read (its first and last 8 bytes XORed, 0 for a well-formed value) or, for a miss,
from the result.

Writes one JSON object per line, in peer_bench's format ("suite": "point").

  manager_dict_bench.py [--keys N] [--ops N] [--reps N] [--out FILE]
"""

import argparse
import json
import multiprocessing
import random
import signal
import statistics
import struct
import sys
import time

MASK = (1 << 64) - 1


def mix(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def key(i):
    return "%016x" % mix(i)


def value(i, revision, size=64):
    stamp = struct.pack("<Q", ((i << 32) | (revision & 0xFFFFFFFF)) & MASK)
    return stamp * (size // 8)


def check(v, i):
    return (
        isinstance(v, bytes)
        and len(v) == 64
        and v == v[:8] * 8
        and struct.unpack("<Q", v[:8])[0] >> 32 == i
    )


def record(op, keys, ops, reps):
    return {
        "suite": "point",
        "engine": "python_manager_dict",
        "op": op,
        "dist": "uniform",
        "keys": keys,
        "value_size": 64,
        "ops_per_rep": ops,
        "ns_per_op": statistics.median(reps),
        "reps_ns": reps,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=1 << 20)
    parser.add_argument("--ops", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if args.keys < 1 or args.ops < 1 or args.reps < 1:
        parser.error("--keys, --ops and --reps must be positive")

    # On SIGTERM, leave through the Manager's context so that its process stops too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    rng = random.Random(20240601)
    out = open(args.out, "w") if args.out else sys.stdout
    with multiprocessing.Manager() as manager:
        d = manager.dict()
        t0 = time.perf_counter()
        order = list(range(args.keys))
        rng.shuffle(order)
        chunk = 10000
        for base in range(0, args.keys, chunk):
            d.update({key(i): value(i, 0) for i in order[base:base + chunk]})
        if len(d) != args.keys:
            sys.exit("manager_dict_bench: loaded %d keys, expected %d" % (len(d), args.keys))
        print("manager_dict_bench: loaded %d keys in %.1f s"
              % (args.keys, time.perf_counter() - t0), file=sys.stderr)
        for i in rng.sample(range(args.keys), min(args.keys, 1000)):
            if not check(d.get(key(i)), i):
                sys.exit("manager_dict_bench: key %d has a wrong value" % i)

        def draws(first, count):
            ids = [first + rng.randrange(count) for _ in range(args.ops)]
            return ids, [key(i) for i in ids]

        def chain(ks, hits):
            """ns per get of a dependent chain over ks; exits unless every get found a
            well-formed value (hits) or nothing (misses)."""
            pos, bad, n = 0, 0, len(ks)
            t = time.perf_counter_ns()
            for _ in range(n):
                v = get(ks[pos])
                if hits:
                    dep = 1 if v is None else (int.from_bytes(v[:8], "little")
                                               ^ int.from_bytes(v[-8:], "little"))
                else:
                    dep = 0 if v is None else 1
                bad |= dep
                pos = (pos + 1 + dep) % n
            elapsed = (time.perf_counter_ns() - t) / n
            if bad:
                sys.exit("manager_dict_bench: dependent chain of %s: %s"
                         % ("hits" if hits else "misses",
                            "a key missing or a value malformed" if hits else "an absent key found"))
            return elapsed

        get = d.get
        results = {"get_hit": [], "get_miss": [], "get_hit_latency": [], "get_miss_latency": [],
                   "put": [], "erase": [], "insert": []}
        revision = 0
        for _ in range(args.reps):
            ids, ks = draws(0, args.keys)
            t = time.perf_counter_ns()
            found = 0
            for k in ks:
                if get(k) is not None:
                    found += 1
            results["get_hit"].append((time.perf_counter_ns() - t) / args.ops)
            if found != args.ops:
                sys.exit("manager_dict_bench: %d of %d hits found" % (found, args.ops))

            _, ks = draws(args.keys, args.keys)
            t = time.perf_counter_ns()
            found = 0
            for k in ks:
                if get(k) is not None:
                    found += 1
            results["get_miss"].append((time.perf_counter_ns() - t) / args.ops)
            if found != 0:
                sys.exit("manager_dict_bench: %d absent keys found" % found)

            results["get_hit_latency"].append(chain(draws(0, args.keys)[1], True))
            results["get_miss_latency"].append(chain(draws(args.keys, args.keys)[1], False))

            ids, ks = draws(0, args.keys)
            vals = []
            for i in ids:
                revision += 1
                vals.append(value(i, revision))
            t = time.perf_counter_ns()
            for k, v in zip(ks, vals):
                d[k] = v
            results["put"].append((time.perf_counter_ns() - t) / args.ops)

            # Erase a batch of distinct keys, then insert them back.
            batch = rng.sample(range(args.keys), min(args.keys, args.ops))
            bks = [key(i) for i in batch]
            t = time.perf_counter_ns()
            for k in bks:
                del d[k]
            results["erase"].append((time.perf_counter_ns() - t) / len(batch))
            bvals = [value(i, 0) for i in batch]
            setdefault = d.setdefault
            t = time.perf_counter_ns()
            for k, v in zip(bks, bvals):
                setdefault(k, v)
            results["insert"].append((time.perf_counter_ns() - t) / len(batch))
        if len(d) != args.keys:
            sys.exit("manager_dict_bench: %d keys at the end, expected %d" % (len(d), args.keys))
        for i in rng.sample(range(args.keys), min(args.keys, 1000)):
            if not check(d.get(key(i)), i):
                sys.exit("manager_dict_bench: key %d has a wrong value at the end" % i)
        for op, reps in results.items():
            n = args.ops if op not in ("erase", "insert") else min(args.keys, args.ops)
            out.write(json.dumps(record(op, args.keys, n, reps)) + "\n")
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
