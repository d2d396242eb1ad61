#!/usr/bin/env bash
# A short stress run with chaos; the harness exits non-zero on any violation.
set -euo pipefail
duration=10
if [[ -n "${SHMDICT_SANITIZED:-}" ]]; then duration=4; fi
seed_flag=()
if [[ -n "${SHMDICT_TEST_SEED:-}" ]]; then seed_flag=(--seed="${SHMDICT_TEST_SEED}"); fi
exec "${TEST_SRCDIR}/shmdict/tools/stress" --duration="$duration" --writers=2 --readers=2 \
  --keys=128 --kill_min_ms=20 --kill_max_ms=80 --stop_every_ms=700 --stop_ms=30 \
  --path="/dev/shm/shmdict-stress-test-$$" "${seed_flag[@]}"
