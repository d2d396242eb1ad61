#!/usr/bin/env bash
# Builds shmdict's fuzz targets with libFuzzer (clang 14, AddressSanitizer and
# UndefinedBehaviorSanitizer: --config=fuzz) and runs each for a while on a copy of
# its seed corpus. Prints executions, speed, coverage and findings per target; exits
# non-zero if any target found anything (crash, sanitizer report, leak, timeout, out of
# memory) or could not run. docs/fuzzing.md has the details.
#
#   tests/fuzz/run_fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
#   SECONDS_PER_TARGET  default 30
#   TARGET              open_fuzz, scribble_fuzz, ops_fuzz (default: all three)
#
# Environment:
#   SHMDICT_FUZZ_JOBS         targets fuzzed at once (default 2)
#   SHMDICT_FUZZ_OUT          directory for logs, grown corpora and findings (default: a
#                             new directory under ${TMPDIR:-/tmp}); kept afterwards
#   SHMDICT_FUZZ_OUTPUT_BASE  Bazel output base of the clang build (default: one per
#                             workspace under ~/.cache; the toolchain differs from the
#                             default build's, so it must not share that output base)
set -uo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-30}"
if [[ $# -gt 0 ]]; then shift; fi
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [[ "$seconds" -lt 1 ]]; then
  echo "run_fuzz.sh: SECONDS_PER_TARGET must be a positive integer, got '$seconds'" >&2
  exit 2
fi
all_targets=(open_fuzz scribble_fuzz ops_fuzz)
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then targets=("${all_targets[@]}"); fi
for t in "${targets[@]}"; do
  if [[ ! -d "tests/fuzz/corpus/$t" ]]; then
    echo "run_fuzz.sh: unknown target '$t' (known: ${all_targets[*]})" >&2
    exit 2
  fi
done
jobs="${SHMDICT_FUZZ_JOBS:-2}"
if ! [[ "$jobs" =~ ^[1-9][0-9]*$ ]]; then
  echo "run_fuzz.sh: SHMDICT_FUZZ_JOBS must be a positive integer, got '$jobs'" >&2
  exit 2
fi

workspace_id=$(printf '%s' "$PWD" | md5sum | cut -c1-12)
cache_dir="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}"
output_base="${SHMDICT_FUZZ_OUTPUT_BASE:-$cache_dir/shmdict-fuzz-bazel/$workspace_id}"
out="${SHMDICT_FUZZ_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/shmdict-fuzz.XXXXXX")}"
mkdir -p "$out"

start=$(date +%s)
labels=()
for t in "${targets[@]}"; do labels+=("//tests/fuzz:$t"); done
echo "run_fuzz.sh: building ${targets[*]} with --config=fuzz (output base $output_base)"
# --symlink_prefix=/: no bazel-* links in the workspace (they belong to the default build).
# --max_idle_secs: the clang build's Bazel server goes away soon after the run.
bazel=(tools/bazel --output_base="$output_base" --max_idle_secs=600)
if ! "${bazel[@]}" build --config=fuzz --symlink_prefix=/ "${labels[@]}"; then
  echo "run_fuzz.sh: build failed" >&2
  exit 1
fi
bin=$("${bazel[@]}" info --config=fuzz bazel-bin 2>/dev/null)
if [[ -z "$bin" || ! -d "$bin" ]]; then
  echo "run_fuzz.sh: cannot find the build's output directory" >&2
  exit 1
fi
echo "run_fuzz.sh: build took $(( $(date +%s) - start )) s; binaries in $bin/tests/fuzz"
echo "run_fuzz.sh: fuzzing ${#targets[@]} targets for ${seconds} s each, ${jobs} at a time;" \
  "output in $out"

symbolizer=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
# A smaller quarantine than the default 256 MB: much faster, still catches use after
# free of recent allocations.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:strict_string_checks=1:quarantine_size_mb=64}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
if [[ -n "$symbolizer" ]]; then export ASAN_SYMBOLIZER_PATH="$symbolizer"; fi

# Longest input libFuzzer may generate, per target: open_fuzz inputs carry a header
# and some buckets; the others are short descriptions.
max_len() {
  case "$1" in
    open_fuzz) echo 8192 ;;
    scribble_fuzz) echo 1024 ;;
    *) echo 4096 ;;
  esac
}

run_one() {
  local t="$1" dir="$out/$1"
  rm -rf "$dir"
  mkdir -p "$dir/corpus"
  cp "tests/fuzz/corpus/$t"/* "$dir/corpus/"
  # libFuzzer stops itself after -max_total_time; the outer timeout only guards against
  # a fuzzer that does not (a hang is caught per input by -timeout).
  timeout --kill-after=10 $(( seconds + 120 )) "$bin/tests/fuzz/$t" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 -max_len="$(max_len "$t")" \
    -print_final_stats=1 -artifact_prefix="$dir/" "$dir/corpus" >"$dir/log" 2>&1
  echo $? >"$dir/rc"
}

for t in "${targets[@]}"; do
  while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do wait -n; done
  run_one "$t" &
done
wait

status=0
printf '\n%-14s %10s %8s %7s %7s %7s %9s\n' target executions exec/s cov ft corpus findings
for t in "${targets[@]}"; do
  dir="$out/$t"
  log="$dir/log"
  rc=$(cat "$dir/rc" 2>/dev/null || echo 1)
  runs=$(sed -n 's/^stat::number_of_executed_\(runs\|units\): *\([0-9]*\).*/\2/p' "$log" | tail -1)
  if [[ -z "$runs" ]]; then
    runs=$(sed -n 's/^Done \([0-9]*\) runs in.*/\1/p' "$log" | tail -1)
  fi
  # The last status line ("#N DONE cov: C ft: F corp: K/...", or the last NEW/pulse).
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
  artifacts=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
    -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
  findings=$(grep -c . <<<"$artifacts")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *\([0-9]*\).*/\1/p' "$log" | tail -1)
  printf '%-14s %10s %8s %7s %7s %7s %9s\n' "$t" "${runs:--}" "${speed:--}" "${cov:--}" \
    "${ft:--}" "${corp:--}" "$findings"
  if [[ "$findings" -gt 0 ]]; then
    status=1
    echo "  FINDING in $t: $(tr '\n' ' ' <<<"$artifacts")"
    grep -m1 -E 'ERROR: |check failed|SUMMARY' "$log" | sed 's/^/    /'
    echo "  log: $log"
  elif [[ "$rc" -ne 0 || -z "$runs" ]]; then
    status=1
    echo "  $t did not finish cleanly (exit status $rc); log: $log"
    tail -5 "$log" | sed 's/^/    /'
  fi
done
echo "run_fuzz.sh: finished in $(( $(date +%s) - start )) s; logs, corpora and findings in $out"
exit $status
