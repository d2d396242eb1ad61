#!/bin/bash
# The committed seed corpora are what corpus_gen writes today: a change to the file
# format or to the generator that leaves the committed seeds stale fails here, with the
# command that rewrites them. Kept reproducers (finding-*) are not generated and are
# left alone.
set -euo pipefail
gen="$1"
committed="$2"
out="${TEST_TMPDIR:-$(mktemp -d)}/corpus"
mkdir -p "$out"
"$gen" "$out" >/dev/null
status=0
for f in $(cd "$out" && find . -type f | sort); do
  if [[ ! -f "$committed/$f" ]]; then
    echo "missing from tests/fuzz/corpus: $f"
    status=1
  elif ! cmp -s "$out/$f" "$committed/$f"; then
    echo "stale in tests/fuzz/corpus: $f"
    status=1
  fi
done
for f in $(cd "$committed" && find . -type f ! -name 'finding-*' | sort); do
  if [[ ! -f "$out/$f" ]]; then
    echo "in tests/fuzz/corpus but no longer generated (remove it, or name it finding-*): $f"
    status=1
  fi
done
if [[ $status -ne 0 ]]; then
  echo "rewrite with: tools/bazel run //tests/fuzz:corpus_gen -- \$PWD/tests/fuzz/corpus"
fi
exit $status
