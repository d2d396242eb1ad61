#!/usr/bin/env bash
# Runs the demo as the README shows it and checks its verdict.
set -euo pipefail
out=$("${TEST_SRCDIR}/shmdict/tools/demo" "/dev/shm/shmdict-demo-test-$$")
echo "$out"
grep -q "^OK: readers never waited" <<<"$out"
