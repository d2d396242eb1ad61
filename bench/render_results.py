#!/usr/bin/env python3
"""Renders the results of bench/run_all.sh: CSV files, gnuplot plots (PNG) and the
Markdown page docs/BENCHMARKS.md with the targets, measured ratios and every table.

  render_results.py --results bench/results --doc docs/BENCHMARKS.md [--root REPO]

Reads from the results directory: peer_bench.jsonl (bench/peer_bench.cc),
manager_dict.jsonl (bench/manager_dict_bench.py), syscalls.jsonl
(bench/count_syscalls.py), machine.json and load.txt (run_all.sh), and, if present,
callgrind_get_hit.txt. Writes the CSV files and PNG plots into the results directory.
"""

import argparse
import csv
import json
import math
import os
import subprocess
import sys

ENGINES = [
    "shmdict",
    "boost_interprocess",
    "lmdb",
    "std_unordered_map",
    "absl_flat_hash_map",
    "memcached",
    "redis",
    "python_manager_dict",
    "floor_dependent_access",
]

LABEL = {
    "shmdict": "shmdict",
    "boost_interprocess": "Boost.Interprocess (unordered_map + sharable mutex)",
    "lmdb": "LMDB (WRITEMAP, NOSYNC)",
    "std_unordered_map": "std::unordered_map + std::shared_mutex (in-process)",
    "absl_flat_hash_map": "absl::flat_hash_map, no lock (in-process)",
    "memcached": "memcached (loopback TCP)",
    "redis": "Redis (loopback TCP)",
    "python_manager_dict": "Python multiprocessing.Manager().dict()",
    "floor_dependent_access": "floor: one dependent random access",
    "seqlock_single_copy": "single-copy seqlock (yardstick)",
}

SHORT = {
    "shmdict": "shmdict",
    "boost_interprocess": "Boost.Interprocess",
    "lmdb": "LMDB",
    "std_unordered_map": "std::unordered_map",
    "absl_flat_hash_map": "absl::flat_hash_map",
    "memcached": "memcached",
    "redis": "Redis",
    "python_manager_dict": "Python Manager dict",
    "floor_dependent_access": "floor",
}


def load_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def ns(x):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if x < 10:
        return "%.1f" % x
    return "{:,.0f}".format(x)


def rate(x):
    if x is None:
        return "n/a"
    if x >= 1e6:
        return "%.2f M" % (x / 1e6)
    if x >= 1e3:
        return "%.1f k" % (x / 1e3)
    return "%.0f" % x


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


class Results:
    def __init__(self, directory):
        self.dir = directory
        self.records = (load_jsonl(os.path.join(directory, "peer_bench.jsonl"))
                        + load_jsonl(os.path.join(directory, "manager_dict.jsonl")))
        self.syscalls = load_jsonl(os.path.join(directory, "syscalls.jsonl"))
        path = os.path.join(directory, "machine.json")
        self.machine = json.load(open(path)) if os.path.exists(path) else {}
        path = os.path.join(directory, "load.txt")
        self.load = open(path).read().strip().splitlines() if os.path.exists(path) else []
        self.meta = next((r for r in self.records if r.get("suite") == "meta"), {})

    def find(self, **kw):
        return [r for r in self.records if all(r.get(k) == v for k, v in kw.items())]

    def one(self, **kw):
        r = self.find(**kw)
        return r[0] if r else None

    def point(self, engine, op, dist="uniform"):
        r = self.one(suite="point", engine=engine, op=op, dist=dist)
        return r["ns_per_op"] if r else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


# --- targets -----------------------------------------------------------------------

def keys_name(k):
    if k >= 1 << 20 and k % (1 << 20) == 0:
        return "%dM" % (k >> 20)
    if k >= 1024 and k % 1024 == 0:
        return "%dK" % (k >> 10)
    return "{:,}".format(k)


def targets(res):
    """(target, measured text, ratio, required, met) rows."""
    rows = []
    kn = keys_name(res.meta.get("keys", 0)) + " keys"

    def add(name, measured, value, op, bound):
        if value is None:
            rows.append((name, measured, "n/a", "%s %g" % (op, bound), "not measured"))
            return
        met = value >= bound if op == ">=" else (value <= bound if op == "<=" else value < bound)
        if met:
            verdict = "met"
        elif op == ">=":
            verdict = "NOT met: %.2fx short (%.2f of %g)" % (bound / value if value else float("inf"), value, bound)
        else:
            verdict = "NOT met: %.2fx over (%.2f vs %g)" % (value / bound, value, bound)
        rows.append((name, measured, "%.2f" % value, "%s %g" % (op, bound), verdict))

    s_hit = res.point("shmdict", "get_hit")
    b_hit = res.point("boost_interprocess", "get_hit")
    l_hit = res.point("lmdb", "get_hit")
    floor = res.point("floor_dependent_access", "get_hit")
    add("get hit, %s: Boost.Interprocess / shmdict" % kn,
        "%s vs %s ns" % (ns(b_hit), ns(s_hit)), ratio(b_hit, s_hit), ">=", 2.5)
    add("get hit, %s: LMDB / shmdict" % kn,
        "%s vs %s ns" % (ns(l_hit), ns(s_hit)), ratio(l_hit, s_hit), ">=", 4)
    add("get hit, %s: shmdict / one dependent random access" % kn,
        "%s vs %s ns" % (ns(s_hit), ns(floor)), ratio(s_hit, floor), "<=", 1.5)
    for b in (8, 16, 64):
        m = res.point("shmdict", "get_many_%d" % b)
        add("batched get (GetMany, batch %d) / single GetInto, per key" % b,
            "%s vs %s ns" % (ns(m), ns(s_hit)), ratio(m, s_hit), "<", 0.6)
    s_hot = res.point("shmdict", "get_hit", "hot64")
    a_hot = res.point("absl_flat_hash_map", "get_hit", "hot64")
    add("hot path (64 keys): shmdict / absl::flat_hash_map find + copy-out",
        "%s vs %s ns" % (ns(s_hot), ns(a_hot)), ratio(s_hot, a_hot), "<=", 2)
    s_put = res.point("shmdict", "put")
    b_put = res.point("boost_interprocess", "put")
    add("put, %s: Boost.Interprocess / shmdict" % kn,
        "%s vs %s ns" % (ns(b_put), ns(s_put)), ratio(b_put, s_put), ">=", 2)
    solo = res.one(suite="mixed", engine="shmdict", phase="solo")
    busy = res.one(suite="mixed", engine="shmdict", phase="writer")
    bbusy = res.one(suite="mixed", engine="boost_interprocess", phase="writer")
    if solo and busy:
        add("reader with a busy writer: throughput / solo throughput",
            "%s vs %s reads/s" % (rate(busy["reads_per_s"]), rate(solo["reads_per_s"])),
            ratio(busy["reads_per_s"], solo["reads_per_s"]), ">=", 0.85)
        add("reader with a busy writer: p99 / solo p99",
            "%s vs %s ns" % (ns(busy["p99_ns"]), ns(solo["p99_ns"])),
            ratio(busy["p99_ns"], solo["p99_ns"]), "<=", 1.5)
    else:
        add("reader with a busy writer: throughput / solo throughput", "n/a", None, ">=", 0.85)
        add("reader with a busy writer: p99 / solo p99", "n/a", None, "<=", 1.5)
    if busy and bbusy:
        add("reader with a busy writer: shmdict / Boost.Interprocess throughput",
            "%s vs %s reads/s" % (rate(busy["reads_per_s"]), rate(bbusy["reads_per_s"])),
            ratio(busy["reads_per_s"], bbusy["reads_per_s"]) if bbusy["reads_per_s"] else float("inf"),
            ">=", 50)
    else:
        add("reader with a busy writer: shmdict / Boost.Interprocess throughput", "n/a", None, ">=", 50)
    hs = res.one(suite="hot_slot", engine="shmdict", method="Dict::GetInto")
    yard = res.one(suite="hot_slot", engine="seqlock_single_copy", method="nonstop writer")
    if hs and yard:
        add("hot slot: shmdict / single-copy seqlock successful reads per second",
            "%s vs %s reads/s" % (rate(hs["reads_per_s"]), rate(yard["reads_per_s"])),
            ratio(hs["reads_per_s"], yard["reads_per_s"]), ">=", 10)
    else:
        add("hot slot: shmdict / single-copy seqlock successful reads per second", "n/a", None, ">=", 10)
    if hs and hs.get("retry_fraction") is not None:
        add("hot slot: shmdict retry fraction (Dict::GetInto)",
            "%.4f%% of attempts" % (100 * hs["retry_fraction"]), hs["retry_fraction"], "<=", 0.10)
    else:
        add("hot slot: shmdict retry fraction", "n/a", None, "<=", 0.10)
    for peer in ("memcached", "redis"):
        p = res.point(peer, "get_hit")
        add("get hit, %s: %s / shmdict" % (kn, SHORT[peer]),
            "%s vs %s ns" % (ns(p), ns(s_hit)), ratio(p, s_hit), ">=", 100)
    for op in ("get", "put"):
        r = next((x for x in res.syscalls if x["engine"] == "shmdict" and x["op"] == op), None)
        if r is None:
            rows.append(("no system call on the %s path" % op, "n/a", "n/a", "== 0", "not measured"))
        else:
            rows.append(("no system call on the %s path (steady state)" % op,
                         "%d calls in %d ops" % (r["syscalls"], r["ops"]),
                         "%.4f" % r["per_op"], "== 0", "met" if r["syscalls"] == 0 else "NOT met"))
    return rows


# --- CSV files -----------------------------------------------------------------------

def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_csvs(res):
    d = res.dir
    rows = [(r["engine"], r["op"], r["dist"], r["keys"], r["value_size"], r["ops_per_rep"],
             "%.3f" % r["ns_per_op"], " ".join("%.3f" % x for x in r["reps_ns"]))
            for r in res.find(suite="point")]
    write_csv(os.path.join(d, "point.csv"),
              ["engine", "op", "dist", "keys", "value_size", "ops_per_rep", "ns_per_op_median", "reps_ns"], rows)
    rows = [(r["engine"], r["keys"], "%.3f" % r["ns_per_op"], r.get("working_set_bytes", ""))
            for r in res.find(suite="sizes")]
    write_csv(os.path.join(d, "sizes.csv"), ["engine", "keys", "ns_per_op_median", "working_set_bytes"], rows)
    rows = [(r["engine"], r["op"], r["value_size"], r["keys"], "%.3f" % r["ns_per_op"])
            for r in res.find(suite="values")]
    write_csv(os.path.join(d, "values.csv"), ["engine", "op", "value_size", "keys", "ns_per_op_median"], rows)
    rows = [(r["engine"], r["phase"], "%.0f" % r["reads_per_s"], "%.0f" % r["writer_writes_per_s"],
             "%.1f" % r["p50_ns"], "%.1f" % r["p99_ns"], "%.1f" % r["p999_ns"], "%.1f" % r["max_ns"],
             r["samples"]) for r in res.find(suite="mixed")]
    write_csv(os.path.join(d, "mixed.csv"),
              ["engine", "phase", "reads_per_s", "writer_writes_per_s", "p50_ns", "p99_ns",
               "p999_ns", "max_ns", "samples"], rows)
    rows = [(r["engine"], r["method"], r.get("reads_per_s", ""), r.get("attempts_per_s", ""),
             r.get("retry_fraction", ""), r.get("writer_writes_per_s", ""))
            for r in res.find(suite="hot_slot")]
    write_csv(os.path.join(d, "hot_slot.csv"),
              ["engine", "method", "reads_per_s", "attempts_per_s", "retry_fraction",
               "writer_writes_per_s"], rows)
    rows = [(r["engine"], r["op"], r["ops"], r["syscalls"], "%.4f" % r["per_op"],
             " ".join("%s=%d" % kv for kv in r["by_name"].items())) for r in res.syscalls]
    write_csv(os.path.join(d, "syscalls.csv"), ["engine", "op", "ops", "syscalls", "per_op", "by_name"], rows)
    write_csv(os.path.join(d, "targets.csv"), ["target", "measured", "ratio", "required", "verdict"],
              targets(res))


# --- plots ---------------------------------------------------------------------------

def gnuplot(script, cwd):
    try:
        subprocess.run(["gnuplot"], input=script, text=True, cwd=cwd, check=True,
                       capture_output=True)
        return True
    except (OSError, subprocess.CalledProcessError) as e:
        err = getattr(e, "stderr", "") or str(e)
        print("render_results: gnuplot failed: %s" % err, file=sys.stderr)
        return False


def plot_sizes(res):
    recs = res.find(suite="sizes")
    if not recs:
        return None
    engines = [e for e in ENGINES if any(r["engine"] == e for r in recs)]
    for e in engines:
        with open(os.path.join(res.dir, "sizes_%s.dat" % e), "w") as f:
            for r in sorted((r for r in recs if r["engine"] == e), key=lambda r: r["keys"]):
                f.write("%d %.3f\n" % (r["keys"], r["ns_per_op"]))
    plots = ", ".join('"sizes_%s.dat" using 1:2 with linespoints lw 2 title "%s"' % (e, SHORT[e])
                      for e in engines)
    ok = gnuplot("""set terminal pngcairo noenhanced size 900,560 font "sans,10"
set output "latency_vs_table_size.png"
set logscale xy
set xlabel "keys in the table (16-byte keys, 64-byte values)"
set ylabel "get hit, ns (median)"
set title "Get latency against table size (one process, uniform random keys)"
set key top left
set grid
%s
plot %s
""" % ("set format x \"%.0s%c\"", plots), res.dir)
    for e in engines:
        os.remove(os.path.join(res.dir, "sizes_%s.dat" % e))
    return "latency_vs_table_size.png" if ok else None


def plot_values(res):
    recs = res.find(suite="values", op="get_hit")
    if not recs:
        return None
    engines = [e for e in ENGINES if any(r["engine"] == e for r in recs)]
    for e in engines:
        with open(os.path.join(res.dir, "values_%s.dat" % e), "w") as f:
            for r in sorted((r for r in recs if r["engine"] == e), key=lambda r: r["value_size"]):
                f.write("%d %.3f\n" % (r["value_size"], r["ns_per_op"]))
    plots = ", ".join('"values_%s.dat" using 1:2 with linespoints lw 2 title "%s"' % (e, SHORT[e])
                      for e in engines)
    ok = gnuplot("""set terminal pngcairo noenhanced size 900,560 font "sans,10"
set output "latency_vs_value_size.png"
set logscale xy 2
set xlabel "value size, bytes"
set ylabel "get hit, ns (median)"
set title "Get latency against value size"
set key top left
set grid
plot %s
""" % plots, res.dir)
    for e in engines:
        os.remove(os.path.join(res.dir, "values_%s.dat" % e))
    return "latency_vs_value_size.png" if ok else None


def plot_mixed(res):
    recs = res.find(suite="mixed")
    if not recs:
        return None
    names = []
    plots = []
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    engines = [e for e in ENGINES if any(r["engine"] == e for r in recs)]
    for i, e in enumerate(engines):
        for phase, dash in (("solo", 1), ("writer", 2)):
            r = res.one(suite="mixed", engine=e, phase=phase)
            if not r:
                continue
            name = "mixed_%s_%s.dat" % (e, phase)
            names.append(name)
            with open(os.path.join(res.dir, name), "w") as f:
                for q, v in r["curve"]:
                    nines = 7.0 if q >= 1 else -math.log10(1 - q) if q > 0 else 0.0
                    f.write("%.4f %.3f\n" % (nines, max(v, 1)))
            plots.append('"%s" using 1:2 with linespoints lw 2 dt %d lc rgb "%s" title "%s, %s"'
                         % (name, dash, colors[i % len(colors)], SHORT[e],
                            "alone" if phase == "solo" else "with a writer process"))
    ok = gnuplot("""set terminal pngcairo noenhanced size 1200,620 font "sans,10"
set output "reader_latency_distribution.png"
set logscale y
set xlabel "percentile"
set ylabel "reader get latency, ns"
set title "Reader latency distribution, alone and with a writer process rewriting random keys"
set xtics ("0" 0, "90" 1, "99" 2, "99.9" 3, "99.99" 4, "99.999" 5, "99.9999" 6, "max" 7)
set key outside right top Left reverse
set grid
plot %s
""" % ", ".join(plots), res.dir)
    for n in names:
        os.remove(os.path.join(res.dir, n))
    return "reader_latency_distribution.png" if ok else None


# --- the page ------------------------------------------------------------------------

def relpath(target, doc):
    return os.path.relpath(target, os.path.dirname(os.path.abspath(doc)))


def render(res, doc, root):
    m = res.machine
    meta = res.meta
    lines = []
    w = lines.append
    w("# Benchmarks: shmdict and its peers")
    w("")
    w("Every figure on this page comes from one run of `bench/run_all.sh%s` (generated by "
      "`bench/render_results.py`; do not edit by hand). All stores get the same keys and "
      "values, drawn before timing; each figure is the median of %s repetitions; the "
      "repetitions of different stores are interleaved in the 1M-key tables, so that a "
      "noisy moment of the machine is spread over all of them (the stores in shared or "
      "local memory among themselves, then the network stores among themselves: a "
      "network loop, with a system call per request and a server on the other vCPU, "
      "slowed the loops measured right after it by up to 2x)."
      % (" --quick" if m.get("mode") == "quick" else "", meta.get("reps", "?")))
    w("")
    w("## Machine and workload")
    w("")
    caches = ("L2 %s, L3 %s" % (m.get("l2"), m.get("l3"))
              if m.get("l2", "?") != "?" else "cache sizes not reported to the guest")
    w("- CPU: %s (`lscpu` model name), %s vCPUs, %s thread(s) per core, %s hypervisor, %s; "
      "%s GiB of memory; Linux %s, clock source %s; transparent huge pages for shared "
      "memory: %s%s."
      % (m.get("cpu_model", "?"), m.get("cpus", "?"), m.get("threads_per_core", "?"),
         m.get("hypervisor", "?"), caches, m.get("memory_gib", "?"),
         m.get("kernel", "?"), m.get("clocksource", "?"), m.get("shmem_thp", "?"),
         " (4 KiB pages for /dev/shm and the floor's buffer)" if m.get("shmem_thp") == "never" else ""))
    w("- **A shared 2-vCPU KVM guest**: other people's builds and tests may run on the same "
      "two vCPUs at any time, and the benchmark itself keeps one or two of them busy. Load "
      "average (1, 5, 15 min) during the run: %s. Absolute figures are noisy; the ratios "
      "of interleaved figures are steadier. The two-process tests are the most sensitive: "
      "when other jobs compete for the vCPUs, the writer process takes CPU time from the "
      "reader (see the reader's CPU share in that table)."
      % "; ".join(res.load) if res.load else "- Load average not recorded.")
    w("- Run: %s, mode %s." % (m.get("date", "?"), m.get("mode", "?")))
    w("- Keys: 16 bytes (the 16 hex digits of a bijective 64-bit mix of the key number, "
      "printable so that memcached, Redis and Python take them as they are). Values: 64 "
      "bytes (the value-size sweep: 8 B to 64 KiB), stamped with the key number and a "
      "revision; every value read is checked outside the timed loops.")
    w("- Tables: %s keys for the point, batch, hot-set, Zipf and mixed "
      "tests, inserted in random order. Uniform random keys with replacement; *hot64*: 64 "
      "keys of the table; *zipf0.99*: Zipf-distributed ranks (s = 0.99) mapped to random "
      "keys. *insert* takes 1/8 of the keys out of the table (timed: *erase*) and puts them "
      "back (the network stores and Python: as many keys as one repetition's operations)."
      % "{:,}".format(meta.get("keys", 0)))
    w("- Timing: a loop of %s operations per repetition for the stores in shared or local "
      "memory, %s for the network stores and 20,000 (full run) for Python; ns per operation "
      "is the loop's wall time over its operations. The mixed and hot-slot tests run for "
      "%.1f s per phase; the mixed test times every get with the time-stamp counter."
      % ("{:,}".format(meta.get("ops_local", 0)), "{:,}".format(meta.get("ops_net", 0)),
         meta.get("phase_s", 0)))
    w("")
    w("Stores:")
    w("")
    w("| store | set-up |")
    w("|---|---|")
    w("| shmdict | `Dict::GetInto` into the caller's buffer (no allocation), `Put`, `Insert`, `Erase`; table in /dev/shm with capacity = keys |")
    w("| Boost.Interprocess 1.74 | `managed_shared_memory` in /dev/shm holding a `boost::unordered_map` of interprocess strings (interprocess allocator), XXH3 hash, lookups by string_view; one `interprocess_sharable_mutex`: sharable lock for reads, exclusive for writes |")
    w("| LMDB 0.9.24 | environment in /dev/shm, `MDB_WRITEMAP \\| MDB_NOSYNC`; each get is a read transaction (`mdb_txn_renew` / `mdb_get` / `mdb_txn_reset`), each write its own write transaction |")
    w("| std::unordered_map | `std::unordered_map<std::string, std::string>` + `std::shared_mutex`, in-process (no sharing between processes) |")
    w("| absl::flat_hash_map | `absl::flat_hash_map<std::string, std::string>` without a lock, in-process: find + copy-out, the hot-path yardstick |")
    w("| memcached 1.6 | on 127.0.0.1, libmemcached text protocol, TCP_NODELAY, one request per operation (no pipelining) |")
    w("| Redis 7.0 | on 127.0.0.1, no persistence, hiredis, one command per operation (no pipelining) |")
    w("| Python | `multiprocessing.Manager().dict()`, one proxy call per operation |")
    w("| floor | one dependent load per step through a random cyclic permutation of 64-byte lines in shared memory as large as shmdict's file: the latency a lookup that misses every cache cannot beat |")
    w("")

    # Targets.
    w("## Targets")
    w("")
    rows = targets(res)
    w(table(["target", "measured", "ratio", "required", "verdict"], rows))
    w("")
    failed = [r[0] for r in rows if r[4].startswith("NOT")]
    if failed:
        w("Targets not met: %d of %d (see *Where the time goes* below)." % (len(failed), len(rows)))
    else:
        w("All %d targets met." % len(rows))
    w("")

    # Point operations.
    keys = meta.get("keys", 0)
    w("## Point operations, %s keys (ns per operation, median)" % "{:,}".format(keys))
    w("")
    ops = [("get_hit", "uniform", "get hit"), ("get_miss", "uniform", "get miss"),
           ("put", "uniform", "put (update)"), ("insert", "uniform", "insert"),
           ("erase", "uniform", "erase"), ("get_hit", "hot64", "get hit, 64 hot keys"),
           ("get_miss", "hot64", "get miss, 64 hot keys"), ("put", "hot64", "put, 64 hot keys"),
           ("get_hit", "zipf0.99", "get hit, Zipf 0.99")]
    s_hit = res.point("shmdict", "get_hit")
    rows = []
    for e in ENGINES:
        cells = [res.point(e, op, dist) for op, dist, _ in ops]
        if all(c is None for c in cells):
            continue
        rows.append([SHORT[e]] + [ns(c) if c is not None else "" for c in cells])
    w(table(["store"] + [t for _, _, t in ops], rows))
    w("")
    rows = []
    for e in ENGINES:
        h = res.point(e, "get_hit")
        p = res.point(e, "put")
        if h is None or e == "shmdict":
            continue
        sp = res.point("shmdict", "put")
        rows.append([SHORT[e], "%.2f" % (h / s_hit) if s_hit else "n/a",
                     "%.2f" % (p / sp) if (p and sp) else ""])
    w("Relative to shmdict (the peer's time over shmdict's; above 1: shmdict is faster):")
    w("")
    w(table(["store", "get hit", "put"], rows))
    w("")

    # Batched.
    w("## Batched lookups (shmdict, %s keys, ns per key)" % "{:,}".format(keys))
    w("")
    rows = [["`GetInto`, one key per call", ns(s_hit), "1.00"]]
    gs = res.point("shmdict", "get_string_hit")
    if gs is not None:
        rows.append(["`Get` (returns a `std::string`)", ns(gs), "%.2f" % (gs / s_hit)])
    for b in (8, 16, 64):
        v = res.point("shmdict", "get_many_%d" % b)
        if v is not None:
            rows.append(["`GetMany`, batches of %d" % b, ns(v), "%.2f" % (v / s_hit)])
    w(table(["call", "ns per key", "vs GetInto"], rows))
    w("")

    # Sizes.
    recs = res.find(suite="sizes")
    if recs:
        sizes = sorted({r["keys"] for r in recs})
        w("## Get latency against table size (get hit, ns, median)")
        w("")
        rows = []
        for e in ENGINES:
            cells = []
            for k in sizes:
                r = res.one(suite="sizes", engine=e, keys=k)
                cells.append(ns(r["ns_per_op"]) if r else "")
            if any(cells):
                rows.append([SHORT[e]] + cells)
        def kname(k):
            return "%dM" % (k >> 20) if k >= 1 << 20 else "%dK" % (k >> 10) if k >= 1024 else str(k)
        w(table(["store"] + [kname(k) for k in sizes], rows))
        w("")
        rows = []
        for k in sizes:
            s = res.one(suite="sizes", engine="shmdict", keys=k)
            f = res.one(suite="sizes", engine="floor_dependent_access", keys=k)
            if s and f:
                rows.append([kname(k), "{:,}".format(f.get("working_set_bytes", 0) >> 20) + " MiB"
                             if f.get("working_set_bytes", 0) >= 1 << 20 else
                             "{:,} KiB".format(f.get("working_set_bytes", 0) >> 10),
                             "%.2f" % (s["ns_per_op"] / f["ns_per_op"])])
        w("shmdict over the floor at the same working set (shmdict's file size):")
        w("")
        w(table(["keys", "working set", "shmdict / floor"], rows))
        w("")
        if res.plots.get("sizes"):
            w("![latency against table size](%s)" % relpath(os.path.join(res.dir, res.plots["sizes"]), doc))
            w("")

    # Values.
    recs = res.find(suite="values")
    if recs:
        vsizes = sorted({r["value_size"] for r in recs})
        w("## Value sizes (ns, median)")
        w("")
        w("Tables of min(%s, 256 MiB / value size) keys, at least 1,024."
          % "{:,}".format(keys))
        w("")
        for op, title in (("get_hit", "get hit"), ("put", "put (update)")):
            rows = []
            for e in ENGINES:
                cells = []
                for v in vsizes:
                    r = res.one(suite="values", engine=e, op=op, value_size=v)
                    cells.append(ns(r["ns_per_op"]) if r else "")
                if any(cells):
                    rows.append([SHORT[e]] + cells)
            w("%s:" % title.capitalize())
            w("")
            w(table(["store"] + ["%s B" % "{:,}".format(v) for v in vsizes], rows))
            w("")
        if res.plots.get("values"):
            w("![latency against value size](%s)" % relpath(os.path.join(res.dir, res.plots["values"]), doc))
            w("")

    # Mixed.
    recs = res.find(suite="mixed")
    if recs:
        w("## Reader with a busy writer process")
        w("")
        w("One process times every get (uniform random keys of the %s-key table); a forked "
          "writer process, which opened the same table itself, rewrites uniform random keys "
          "nonstop. *alone*: no writer." % "{:,}".format(keys))
        w("")
        rows = []
        for e in ENGINES:
            for phase in ("solo", "writer"):
                r = res.one(suite="mixed", engine=e, phase=phase)
                if not r:
                    continue
                cpu = r.get("reader_cpu_share")
                rows.append([SHORT[e], "alone" if phase == "solo" else "with writer",
                             rate(r["reads_per_s"]), ns(r["p50_ns"]), ns(r["p99_ns"]),
                             ns(r["p999_ns"]), ns(r["max_ns"]),
                             rate(r["writer_writes_per_s"]) if phase == "writer" else "",
                             "%.0f%%" % (100 * cpu) if cpu is not None else "",
                             rate(r.get("reads_per_cpu_s")) if cpu is not None else ""])
        w(table(["store", "phase", "reads/s", "p50 ns", "p99 ns", "p99.9 ns", "max ns",
                 "writer writes/s", "reader's CPU share", "reads per reader CPU-second"],
                rows))
        w("")
        w("*reader's CPU share*: the reader's CPU time over the window's wall time. With two "
          "vCPUs shared with other people's jobs, a busy writer process also takes CPU "
          "time away from the reader; *reads per reader CPU-second* factors that out and "
          "leaves the interference in memory (cache lines the writer invalidates, locks).")
        w("")
        solo = res.one(suite="mixed", engine="shmdict", phase="solo")
        busy = res.one(suite="mixed", engine="shmdict", phase="writer")
        if solo and busy and solo.get("reads_per_cpu_s") and busy.get("reads_per_cpu_s"):
            w("shmdict with the writer, per reader CPU-second: %.2fx its solo throughput "
              "(wall clock: %.2fx)." % (busy["reads_per_cpu_s"] / solo["reads_per_cpu_s"],
                                        busy["reads_per_s"] / solo["reads_per_s"]))
            w("")
        if res.plots.get("mixed"):
            w("![reader latency distribution](%s)" % relpath(os.path.join(res.dir, res.plots["mixed"]), doc))
            w("")

    # Hot slot.
    recs = res.find(suite="hot_slot")
    if recs:
        w("## Hot slot: the writer rewrites the very key the reader reads")
        w("")
        rows = []
        for r in recs:
            rf = r.get("retry_fraction")
            rows.append([LABEL.get(r["engine"], r["engine"]), r["method"], rate(r["reads_per_s"]),
                         rate(r["attempts_per_s"]),
                         "%.4f%%" % (100 * rf) if rf is not None else "not visible",
                         rate(r["writer_writes_per_s"])])
        w(table(["reader", "method", "successful reads/s", "attempts/s", "retries",
                 "writer writes/s"], rows))
        w("")
        w("*retries* of `Dict::GetInto`: the engine's per-thread retry counter "
          "(`internal::ReadRetriesOfThisThread`), read before and after the phase; attempts "
          "= successful reads + retries. The *slot protocol probe* reads the same slot with "
          "the same protocol (core/table.h: read the stable copy, retry only if a second "
          "write began on it) without the hashing and bucket lookup around it, and counts "
          "its own attempts: a cross-check. The yardstick's writer writes nonstop, as "
          "shmdict's does (a `Put` per iteration); the paced line gives it shmdict's "
          "writer's write rate instead.")
        w("")
        hs = res.one(suite="hot_slot", engine="shmdict", method="Dict::GetInto")
        yard = res.one(suite="hot_slot", engine="seqlock_single_copy", method="nonstop writer")
        s_hot = res.point("shmdict", "get_hit", "hot64")
        if hs and yard and s_hot and yard["reads_per_s"] and hs["reads_per_s"] < 10 * yard["reads_per_s"]:
            # The target (10x the yardstick's successful reads) against what one get costs.
            need_ns = 1e9 / (10 * yard["reads_per_s"])
            attempts = yard.get("attempts_per_s")
            fail = (1 - yard["reads_per_s"] / attempts) if attempts else None
            w("Why the 10x target is out of reach here: the yardstick's reader completes %s "
              "successful reads/s%s; ten times that is one successful read every %.1f ns, "
              "while a shmdict get of one of 64 hot keys costs %.1f ns with no writer at all "
              "(the point suite's hot-path figure), and under the writer each read must first "
              "fetch the line the writer just took (shmdict: %.1f ns per successful read). "
              "The yardstick's failed attempts are spins of a few ns on a cached odd "
              "sequence, so failing most attempts costs it little."
              % (rate(yard["reads_per_s"]),
                 " of %s attempts/s (%.0f%% fail)" % (rate(attempts), 100 * fail) if fail is not None else "",
                 need_ns, s_hot, 1e9 / hs["reads_per_s"]))
            w("")

    # Syscalls.
    if res.syscalls:
        w("## System calls in steady state")
        w("")
        w("`strace -f` of `peer_bench --syscall_probe=STORE` (a 65,536-key table, warmed up: "
          "every key read and written once), counting every system call between marker "
          "calls around the get loop and around the put loop (`bench/count_syscalls.py`).")
        w("")
        rows = []
        for e in ENGINES:
            for op in ("get", "put"):
                r = next((x for x in res.syscalls if x["engine"] == e and x["op"] == op), None)
                if r:
                    rows.append([SHORT[e], op, "{:,}".format(r["ops"]), "{:,}".format(r["syscalls"]),
                                 "%.3f" % r["per_op"],
                                 ", ".join("%s %s" % (k, "{:,}".format(v)) for k, v in r["by_name"].items())])
        w(table(["store", "loop", "operations", "system calls", "per operation", "which"], rows))
        w("")

    # Callgrind.
    profiles = [(n, t) for n, t in (("get_hit", "get hit (`Dict::GetInto`)"),
                                     ("get_many_16", "batched get (`Dict::GetMany`, 16 keys)"),
                                     ("put", "put (update)"))
                if os.path.exists(os.path.join(res.dir, "callgrind_%s.md" % n))]
    if profiles:
        w("## Where the time goes: shmdict under callgrind")
        w("")
        w("`valgrind --tool=callgrind --cache-sim=yes --dump-instr=yes`, collecting only the "
          "timed loop (`--toggle-collect=shmdict_bench_profile_loop`), summarized by "
          "`bench/callgrind_summary.py`. Ir: instructions; D1mr / DLmr: first-level / "
          "last-level data read misses of callgrind's simulated caches (48 KiB L1D, 32 MiB "
          "last level; no TLB, no hardware prefetcher, prefetch instructions ignored), not "
          "this CPU's counters.")
        w("")
        for n, title in profiles:
            w("### %s" % title)
            w("")
            w(open(os.path.join(res.dir, "callgrind_%s.md" % n)).read().rstrip())
            w("")

    w("## Reproducing")
    w("")
    w("```sh")
    w("bench/run_all.sh            # everything, about 20-30 minutes; results in bench/results/")
    w("bench/run_all.sh --quick    # small sizes, one repetition")
    w("```")
    w("")
    w("Raw results: `bench/results/*.jsonl` (every repetition), CSV files beside them.")
    w("")
    with open(doc, "w") as f:
        f.write("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", required=True)
    parser.add_argument("--doc", required=True)
    parser.add_argument("--root", default=".")
    args = parser.parse_args()
    res = Results(os.path.abspath(args.results))
    if not res.records:
        sys.exit("render_results: no results in %s" % args.results)
    write_csvs(res)
    res.plots = {"sizes": plot_sizes(res), "values": plot_values(res), "mixed": plot_mixed(res)}
    render(res, os.path.abspath(args.doc), args.root)


if __name__ == "__main__":
    main()
