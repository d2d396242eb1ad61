#!/usr/bin/env bash
# The documented install (docs/python.md), tested as a user meets it: a fresh copy of
# the source tree, a fresh virtual environment of Debian's Python
# (/usr/bin/python3 -m venv --system-site-packages), one offline pip command, then the
# package's Python tests run against the installed package, not the source tree: once
# on the extension module and once on ctypes (SHMDICT_FORCE_CTYPES=1).
#
#   tests/python_install/run.sh               from a source tree (CI, after its clone)
#   tools/bazel test //tests/python_install:python_install_test     (tagged manual)
#
# The copy holds what git has in the working tree (tracked files and untracked ones
# that are not ignored, with their uncommitted changes), or, outside a git checkout,
# the whole tree but Bazel's output links.
set -euo pipefail

PYTHON=/usr/bin/python3

# The source tree: this script's, through Bazel's runfiles link when run by Bazel.
script="$(readlink -f "${BASH_SOURCE[0]}")"
src="$(cd "$(dirname "$script")/../.." && pwd)"
if [[ ! -f "$src/api/python/setup.py" ]]; then
  echo "run.sh: no api/python/setup.py under $src" >&2
  exit 1
fi

work="$(mktemp -d "${TEST_TMPDIR:-${TMPDIR:-/tmp}}/shmdict-install.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir "$work/src" "$work/tests"

echo "::: copying $src"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$src" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [[ -e "$f" ]] && printf '%s\0' "$f"; done |
    tar --null -T - -cf -) | tar -C "$work/src" -xf -
else
  tar -C "$src" --exclude='./bazel-*' --exclude='./api/python/build' -cf - . |
    tar -C "$work/src" -xf -
fi

echo "::: $PYTHON -m venv --system-site-packages"
"$PYTHON" -m venv --system-site-packages "$work/venv"
venv_python="$work/venv/bin/python"

echo "::: pip install --no-build-isolation --no-index ./api/python"
(cd "$work/src" && "$venv_python" -m pip install --quiet --no-build-isolation --no-index \
  ./api/python)

# The tests, away from the source tree; nothing but the venv provides `shmdict`.
cp "$work/src/api/python/"*_test.py "$work/src/api/python/pytest_main.py" "$work/tests/"
rm -rf "$work/src"
cd "$work/tests"
unset PYTHONPATH SHMDICT_LIBRARY SHMDICT_FORCE_CTYPES

echo "::: where shmdict comes from"
"$venv_python" - <<'PY'
import os, sys
import shmdict
from shmdict import _engine
assert shmdict.__file__.startswith(sys.prefix + os.sep), shmdict.__file__
assert shmdict.backend == "native", _engine.native_error
print("shmdict from", os.path.dirname(shmdict.__file__))
print("core:", shmdict.backend, shmdict.library_path)
PY

# Each file in a process of its own, as Bazel runs them (the Django tests configure
# Django's settings, once per process).
status=0
for backend in native ctypes; do
  force=""
  if [[ $backend == ctypes ]]; then force=1; fi
  for test in ./*_test.py; do
    echo "::: $test on the $backend core"
    if ! env SHMDICT_EXPECT_BACKEND="$backend" ${force:+SHMDICT_FORCE_CTYPES=1} \
        "$venv_python" -m pytest -q -p no:cacheprovider "$test"; then
      echo "::: FAILED: $test on the $backend core"
      status=1
    fi
  done
done
if [[ $status -eq 0 ]]; then echo "::: all passed"; fi
exit $status
