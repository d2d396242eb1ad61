#!/usr/bin/env bash
# Short stress runs with chaos; the harness exits non-zero on any violation.
#   1. the dictionary: every operation, writers killed and stopped;
#   2. a cache: half the writes with times to live of 1-40 ms, touch in the mix, the
#      checker holding reads to the expiry deadlines;
#   3. a full lrs table (256 keys in a table for 64): evictions on most inserts.
set -euo pipefail
duration=10
cache_duration=5
if [[ -n "${SHMDICT_SANITIZED:-}" ]]; then duration=4; cache_duration=3; fi
seed_flag=()
if [[ -n "${SHMDICT_TEST_SEED:-}" ]]; then seed_flag=(--seed="${SHMDICT_TEST_SEED}"); fi
stress="${TEST_SRCDIR}/shmdict/tools/stress"
cache_mix=put=30,insert=10,replace=10,erase=10,cas=15,fetch_add=10,touch=15
"$stress" --duration="$duration" --writers=2 --readers=2 \
  --keys=128 --kill_min_ms=20 --kill_max_ms=80 --stop_every_ms=700 --stop_ms=30 \
  --path="/dev/shm/shmdict-stress-test-$$" "${seed_flag[@]}"
"$stress" --duration="$cache_duration" --writers=2 --readers=2 --keys=128 \
  --mix="$cache_mix" --ttl_percent=50 --ttl_min_ms=1 --ttl_max_ms=40 \
  --kill_min_ms=20 --kill_max_ms=80 \
  --path="/dev/shm/shmdict-stress-test-ttl-$$" "${seed_flag[@]}"
"$stress" --duration="$cache_duration" --writers=2 --readers=2 --keys=256 --capacity=64 \
  --eviction=lrs --mix="$cache_mix" --ttl_percent=50 --ttl_min_ms=1 --ttl_max_ms=40 \
  --kill_min_ms=20 --kill_max_ms=80 \
  --path="/dev/shm/shmdict-stress-test-lrs-$$" "${seed_flag[@]}"
