#!/usr/bin/env bash
set -euo pipefail
out=$("$TEST_SRCDIR/$TEST_WORKSPACE/hit_counter")
expected=$'/ 3\n/about 1\n/missing 0'
if [[ "$out" != "$expected" ]]; then
  echo "hit_counter printed:"; echo "$out"; echo "expected:"; echo "$expected"
  exit 1
fi
echo "hit_counter: ok"
