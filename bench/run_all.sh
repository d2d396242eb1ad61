#!/usr/bin/env bash
# shmdict against its peers, in one command: builds the benchmark and libshmdict.so
# with -c opt, installs what is missing (Debian), starts memcached and Redis on
# 127.0.0.1, runs every suite, counts system calls under strace, profiles the get path
# (static and through libshmdict.so) with callgrind, and renders docs/BENCHMARKS.md
# with its tables and plots, and the summary in README.md's Performance section.
#
#   bench/run_all.sh                 the full run (about 30-45 minutes on 2 quiet vCPUs)
#   bench/run_all.sh --quick         small sizes, one repetition: a smoke run (~3 min)
#
# Options:
#   --results DIR     where the results go (default bench/results): peer_bench.jsonl,
#                     manager_dict.jsonl, syscalls.jsonl, machine.json, the CSV files,
#                     the PNG plots, strace and callgrind summaries
#   --doc FILE        the Markdown page to write (default docs/BENCHMARKS.md)
#   --readme FILE     the README whose Performance summary to rewrite (default
#                     README.md for a full run; a --quick run leaves it alone)
#   --no-readme       rewrite no README
#   --no-callgrind    skip the callgrind profiles
#   --no-install      do not install missing packages
#   -- ARGS           passed on to peer_bench (for example --suites=point,mixed)
#
# Hand-written notes on a run (the reasons behind its figures, what its profile shows)
# go in RESULTS/notes.md, whose first line is "Run: <the date in machine.json>"; the page
# shows them under "Notes on this run" only while that date is the run's.
#
# The servers are started with their pids recorded in the results directory and stopped
# at exit, whatever the exit (error, Ctrl-C, kill). Everything the run creates in
# /dev/shm carries the prefix shmdict-peer-bench-<this script's pid> and is removed at
# exit as well.
#
# Environment: BAZEL_OUTPUT_BASE, if set, is passed to Bazel as --output_base.
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)

quick=0
callgrind=1
install=1
results="bench/results"
doc="docs/BENCHMARKS.md"
readme=""
readme_set=0
extra=()
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --results) results="$2"; shift ;;
    --results=*) results="${1#*=}" ;;
    --doc) doc="$2"; shift ;;
    --doc=*) doc="${1#*=}" ;;
    --readme) readme="$2"; readme_set=1; shift ;;
    --readme=*) readme="${1#*=}"; readme_set=1 ;;
    --no-readme) readme=""; readme_set=1 ;;
    --no-callgrind) callgrind=0 ;;
    --no-install) install=0 ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if ((!readme_set && !quick)); then readme="README.md"; fi

log() { echo "run_all.sh: $*" >&2; }

# --- packages --------------------------------------------------------------------
runtime_packages=(memcached redis-server redis-tools gnuplot-nox strace valgrind python3
  python3-django python3-django-redis python3-diskcache python3-pymemcache)
if ((install)); then
  missing=()
  for pkg in "${runtime_packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if ((${#missing[@]})); then
    if [[ ! -f /etc/debian_version ]]; then
      log "missing ${missing[*]}, and this is not Debian: install them and run again"
      exit 1
    fi
    log "installing ${missing[*]}"
    sudo=()
    if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq >&2
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
fi
for tool in memcached redis-server redis-cli gnuplot strace python3; do
  command -v "$tool" >/dev/null || { log "$tool is not installed"; exit 1; }
done
if ((callgrind)) && ! command -v valgrind >/dev/null; then
  log "valgrind is not installed: skipping the callgrind profile"
  callgrind=0
fi

# --- build -----------------------------------------------------------------------
bazel_startup=()
if [[ -n "${BAZEL_OUTPUT_BASE:-}" ]]; then bazel_startup=(--output_base="$BAZEL_OUTPUT_BASE"); fi
log "building //bench:peer_bench and //api:libshmdict.so with -c opt"
# -g only adds debug information (GCC's code does not change with it), for callgrind's
# source lines. --symlink_prefix=/ leaves the workspace's bazel-* links alone.
build_flags=(-c opt --copt=-g --symlink_prefix=/)
tools/bazel "${bazel_startup[@]}" build "${build_flags[@]}" //bench:peer_bench //api:libshmdict.so \
  //api/python:bench_shmdict >&2
bazel_bin="$(tools/bazel "${bazel_startup[@]}" info "${build_flags[@]}" bazel-bin 2>/dev/null)"
bin="$bazel_bin/bench/peer_bench"
lib="$bazel_bin/api/libshmdict.so"
[[ -x "$bin" ]] || { log "no binary at $bin"; exit 1; }
[[ -f "$lib" ]] || { log "no library at $lib"; exit 1; }

mkdir -p "$results"
results=$(cd "$results" && pwd)
prefix="shmdict-peer-bench-$$"
work=$(mktemp -d)

# --- servers, and the clean-up that stops them -------------------------------------
pids=()
child=""
# Runs a command in the background and waits for it, so that a signal to this script
# is handled at once (bash runs traps only between foreground commands) and the
# clean-up can stop the command too.
run() {
  "$@" &
  child=$!
  local rc=0
  wait "$child" || rc=$?
  child=""
  return "$rc"
}
cleanup() {
  local rc=$?
  if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  rm -f "$results/servers.pid"
  rm -rf "/dev/shm/${prefix}"-* "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_for_port() {  # name pid port
  for _ in $(seq 100); do
    if ! kill -0 "$2" 2>/dev/null; then log "$1 exited at start"; return 1; fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "$1 does not listen on 127.0.0.1:$3"
  return 1
}

mc_port=$(free_port)
user_opt=()
if [[ $(id -u) -eq 0 ]]; then user_opt=(-u root); fi
memcached -l 127.0.0.1 -p "$mc_port" -U 0 -m 4096 -t 2 "${user_opt[@]}" >"$work/memcached.log" 2>&1 &
pids+=($!)
echo "memcached $! 127.0.0.1:$mc_port" >>"$results/servers.pid"
wait_for_port memcached "$!" "$mc_port"

redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --protected-mode yes --save "" \
  --appendonly no --daemonize no --dir "$work" >"$work/redis.log" 2>&1 &
pids+=($!)
echo "redis-server $! 127.0.0.1:$redis_port" >>"$results/servers.pid"
wait_for_port redis-server "$!" "$redis_port"
log "memcached on 127.0.0.1:$mc_port, redis-server on 127.0.0.1:$redis_port (pids ${pids[*]})"

# --- the machine -----------------------------------------------------------------
load() { cut -d' ' -f1-3 /proc/loadavg; }
python3 - "$results/machine.json" "$quick" "$(load)" <<'EOF'
import json, os, platform, subprocess, sys, time
out, quick, load = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
fields = {}
for line in lscpu.splitlines():
    k, _, v = line.partition(":")
    fields[k.strip()] = v.strip()
mem_kb = 0
with open("/proc/meminfo") as f:
    for line in f:
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
json.dump({
    "cpu_model": fields.get("Model name", "?"),
    "cpus": os.cpu_count(),
    "threads_per_core": fields.get("Thread(s) per core", "?"),
    "hypervisor": fields.get("Hypervisor vendor", "KVM" if "hypervisor" in fields.get("Flags", "") else "none"),
    "l2": fields.get("L2 cache", "?"),
    "l3": fields.get("L3 cache", "?"),
    "memory_gib": round(mem_kb / 1048576, 1),
    "kernel": platform.release(),
    "clocksource": open("/sys/devices/system/clocksource/clocksource0/current_clocksource").read().strip(),
    "shmem_thp": (open("/sys/kernel/mm/transparent_hugepage/shmem_enabled").read().split("[")[1].split("]")[0]
                  if os.path.exists("/sys/kernel/mm/transparent_hugepage/shmem_enabled") else "?"),
    "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    "mode": "quick" if quick else "full",
    "load_at_start": load,
}, open(out, "w"), indent=1)
EOF
echo "start $(load)" >"$results/load.txt"

# --- the benchmarks ----------------------------------------------------------------
mode=()
if ((quick)); then mode=(--quick); fi
log "peer_bench ${mode[*]} ${extra[*]}"
run "$bin" "${mode[@]}" --memcached="127.0.0.1:$mc_port" --redis="127.0.0.1:$redis_port" \
  --libshmdict="$lib" --name_prefix="$prefix" --out="$results/peer_bench.jsonl" "${extra[@]}"
echo "after peer_bench $(load)" >>"$results/load.txt"

log "Python multiprocessing.Manager().dict()"
if ((quick)); then
  run python3 bench/manager_dict_bench.py --keys 65536 --ops 2000 --reps 1 --out "$results/manager_dict.jsonl"
else
  run python3 bench/manager_dict_bench.py --keys 1048576 --ops 20000 --reps 5 --out "$results/manager_dict.jsonl"
fi

log "Django cache backends from 8 processes (Debian's /usr/bin/python3)"
if ((quick)); then
  django_args=(--keys 2000 --ops 500 --reps 1)
else
  django_args=(--keys 10000 --ops 5000 --reps 3)
fi
# The package as Bazel built it, with its native core (shmdict._native).
PYTHONPATH="$bazel_bin/api/python/bench_shmdict.runfiles/shmdict/api/python" run /usr/bin/python3 \
  bench/django_cache_bench.py --memcached "127.0.0.1:$mc_port" --redis "127.0.0.1:$redis_port" \
  --procs 8 "${django_args[@]}" --out "$results/django.jsonl"
echo "after django $(load)" >>"$results/load.txt"

log "system calls of the steady-state get and put loops (strace -f)"
: >"$results/syscalls.jsonl"
for engine in shmdict shmdict_so naive_seqlock boost_interprocess lmdb std_unordered_map \
  absl_flat_hash_map memcached redis; do
  ops=100000
  case "$engine" in memcached|redis) ops=5000 ;; esac
  run strace -f -o "$work/strace.txt" "$bin" --syscall_probe="$engine" --keys=65536 \
    --probe_ops="$ops" --memcached="127.0.0.1:$mc_port" --redis="127.0.0.1:$redis_port" \
    --libshmdict="$lib" --name_prefix="$prefix" >/dev/null
  python3 bench/count_syscalls.py --engine "$engine" --ops "$ops" "$work/strace.txt" \
    >>"$results/syscalls.jsonl"
done
echo "after strace $(load)" >>"$results/load.txt"

rm -f "$results"/callgrind_*.md "$results"/callgrind_*.out
if ((callgrind)); then
  keys=1048576; ops=200000
  if ((quick)); then keys=65536; ops=20000; fi
  # engine:operation:name of the summary (callgrind_NAME.md)
  for profile in shmdict:get_hit/uniform:get_hit shmdict_so:get_hit/uniform:so_get_hit \
    shmdict:get_many_16/uniform:get_many_16 shmdict:put/uniform:put; do
    IFS=: read -r engine op name <<<"$profile"
    log "callgrind profile of $engine's $op (collects shmdict_bench_profile_loop only)"
    # The guest does not expose its cache sizes; simulate a 48 KiB 12-way L1D and a
    # 32 MiB 16-way last level, as on this EPYC's core complex.
    run valgrind --tool=callgrind --collect-atstart=no \
      --toggle-collect=shmdict_bench_profile_loop --cache-sim=yes --dump-instr=yes \
      --D1=49152,12,64 --LL=33554432,16,64 \
      --callgrind-out-file="$work/callgrind_$name.out" \
      "$bin" --profile_probe --profile_engine="$engine" --profile_op="$op" --keys="$keys" \
      --probe_ops="$ops" --libshmdict="$lib" --name_prefix="$prefix" 2>"$work/callgrind.log" >/dev/null
    # The loads that miss are attributed to source lines in the object that runs them.
    object="$bin"
    if [[ $engine == shmdict_so ]]; then object="$lib"; fi
    python3 bench/callgrind_summary.py --ops "$ops" --binary "$object" \
      --label "$engine $op, $keys keys, $ops operations (the figures include the benchmark loop's walk over its key stream). Source lines are those of the sources this run built." \
      "$work/callgrind_$name.out" >"$results/callgrind_$name.md"
    cp "$work/callgrind_$name.out" "$results/callgrind_$name.out"
  done
fi
echo "end $(load)" >>"$results/load.txt"

log "rendering $doc${readme:+ and $readme}"
python3 bench/render_results.py --results "$results" --doc "$doc" --root "$root" \
  ${readme:+--readme "$readme"}
log "done: $doc, ${readme:+$readme, }$results"
