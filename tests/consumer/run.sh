#!/usr/bin/env bash
# Builds and tests tests/consumer: a separate workspace that depends on shmdict the
# way other projects do (local_repository + shmdict_dependencies()). Exits non-zero
# on failure. Extra arguments go to `bazel test`.
#
#   tests/consumer/run.sh
#
# It has its own Bazel output base (SHMDICT_CONSUMER_OUTPUT_BASE, default
# /tmp/shmdict_consumer_<uid>), whose server exits after two idle minutes.
set -euo pipefail
cd "$(dirname "$0")"
output_base="${SHMDICT_CONSUMER_OUTPUT_BASE:-${TMPDIR:-/tmp}/shmdict_consumer_$(id -u)}"
# tools/bazel installs the Debian packages the build needs, then runs Bazel 4.
exec ../../tools/bazel --output_base="$output_base" --max_idle_secs=120 \
  test //... "$@"
