#!/usr/bin/env bash
# A tiny run of every suite of the peer benchmark on the stores that need no server
# (shmdict_so loads the libshmdict.so built with the binary, from its runfiles):
# checks that the binary works and that its results are whole, never how fast anything
# is. peer_bench itself checks every value it reads (loaded, updated, erased and
# re-inserted keys; torn reads in the two-process tests) and exits non-zero on any
# mismatch; this script then checks that every expected figure was written.
set -euo pipefail

bin="${TEST_SRCDIR:-.}/${TEST_WORKSPACE:-shmdict}/bench/peer_bench"
[[ -x "$bin" ]] || bin="bench/peer_bench"
out="${TEST_TMPDIR:-$(mktemp -d)}/peer_bench_smoke.jsonl"
prefix="shmdict-peer-bench-smoke-$$-$RANDOM"

# Sanitized builds run many times slower: smaller tables and values there.
sizes=()
if [[ -n "${SHMDICT_SANITIZED:-}" ]]; then
  sizes=(--keys=1024 --sizes=512,1024 --value_sizes=8,256)
fi

status=0
"$bin" --smoke --phase_ms=20 --name_prefix="$prefix" --out="$out" "${sizes[@]}" \
  --engines=shmdict,shmdict_so,naive_seqlock,boost_interprocess,lmdb,std_unordered_map,absl_flat_hash_map \
  || status=$?
leftover=$(ls /dev/shm | grep -c "^${prefix}" || true)
rm -rf /dev/shm/"${prefix}"-*
if [[ $status -ne 0 ]]; then
  echo "FAIL: peer_bench --smoke exited with status $status" >&2
  exit 1
fi
if [[ $leftover -ne 0 ]]; then
  echo "FAIL: peer_bench left $leftover files in /dev/shm" >&2
  exit 1
fi

python3 - "$out" <<'EOF'
import json, math, sys

records = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
errors = []

def has(**kw):
    return [r for r in records if all(r.get(k) == v for k, v in kw.items())]

def check_number(r, field, positive=True):
    v = r.get(field)
    if (not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0
            or (positive and v == 0)):
        errors.append("%s: %s is %r" % (json.dumps({k: r[k] for k in ("suite", "engine") if k in r}), field, v))

# Counts, not speeds: a reader may legitimately be starved (retry fraction 1) and a
# writer descheduled for a whole short window (0 writes in it).

local = ["shmdict", "shmdict_so", "naive_seqlock", "boost_interprocess", "lmdb",
         "std_unordered_map", "absl_flat_hash_map"]
shared = ["shmdict", "shmdict_so", "naive_seqlock", "boost_interprocess", "lmdb"]
for e in local:
    for op, dist in [("get_hit", "uniform"), ("get_miss", "uniform"),
                     ("get_hit_latency", "uniform"), ("get_miss_latency", "uniform"),
                     ("put", "uniform"),
                     ("insert", "uniform"), ("erase", "uniform"), ("get_hit", "hot64"),
                     ("put", "hot64"), ("get_hit", "zipf0.99")]:
        r = has(suite="point", engine=e, op=op, dist=dist)
        if len(r) != 1:
            errors.append("point %s %s %s: %d records" % (e, op, dist, len(r)))
        else:
            check_number(r[0], "ns_per_op")
for op in ["get_string_hit", "get_many_8", "get_many_16", "get_many_64"]:
    if len(has(suite="point", engine="shmdict", op=op)) != 1:
        errors.append("point shmdict %s missing" % op)
for op in ["get_many_8", "get_many_16", "get_many_64"]:
    if len(has(suite="point", engine="shmdict_so", op=op)) != 1:
        errors.append("point shmdict_so %s missing" % op)
for op in ["get_hit", "get_hit_latency"]:
    r = has(suite="point", engine="floor_dependent_access", op=op)
    if len(r) != 1:
        errors.append("the floor (%s) is missing" % op)
    else:
        check_number(r[0], "ns_per_op")
for e in shared:
    for phase in ["solo", "writer"]:
        r = has(suite="mixed", engine=e, phase=phase)
        if len(r) != 1:
            errors.append("mixed %s %s: %d records" % (e, phase, len(r)))
            continue
        check_number(r[0], "reads_per_s")  # every run completes at least one get
        check_number(r[0], "writer_writes_per_s", positive=False)
        if not r[0]["p50_ns"] <= r[0]["p99_ns"] <= r[0]["p999_ns"] <= r[0]["max_ns"]:
            errors.append("mixed %s %s: percentiles out of order" % (e, phase))
for e in ["std_unordered_map", "absl_flat_hash_map"]:
    if has(suite="mixed", engine=e):
        errors.append("mixed test ran on in-process store %s" % e)
probe = has(suite="hot_slot", engine="shmdict", method="slot protocol probe")
if len(probe) != 1:
    errors.append("hot slot probe missing")
else:
    p = probe[0]
    check_number(p, "reads_per_s", positive=False)
    check_number(p, "attempts_per_s")
    if not (0 <= p["retry_fraction"] <= 1) or p["attempts_per_s"] < p["reads_per_s"]:
        errors.append("hot slot probe: inconsistent counts %r" % p)
get = has(suite="hot_slot", engine="shmdict", method="Dict::GetInto")
if len(get) != 1:
    errors.append("hot slot Dict::GetInto missing")
else:
    g = get[0]
    check_number(g, "reads_per_s")
    if not (0 <= g["retry_fraction"] <= 1) or g["attempts_per_s"] < g["reads_per_s"]:
        errors.append("hot slot Dict::GetInto: inconsistent counts %r" % g)
for method in ["nonstop writer", "writer paced to shmdict's write rate"]:
    r = has(suite="hot_slot", engine="seqlock_single_copy", method=method)
    if len(r) != 1:
        errors.append("seqlock yardstick (%s) missing" % method)
    elif not (0 <= r[0]["retry_fraction"] <= 1) or r[0]["attempts_per_s"] < r[0]["reads_per_s"]:
        errors.append("seqlock yardstick (%s): retry fraction %r" % (method, r[0]["retry_fraction"]))
for e in local:
    for op in ["get_hit", "get_hit_latency"]:
        sizes = {r["keys"] for r in has(suite="sizes", engine=e, op=op)}
        if len(sizes) < 2:
            errors.append("sizes suite: %d sizes for %s %s" % (len(sizes), e, op))
for e in local:
    if len(has(suite="values", engine=e)) < 4:
        errors.append("values suite: too few records for %s" % e)
if errors:
    print("FAIL:\n  " + "\n  ".join(errors))
    sys.exit(1)
print("peer_bench smoke run: %d records, all present and well-formed" % len(records))
EOF
