"""Runs a pytest test file as a Bazel py_test: `pytest_main.main(__file__)`.

Django and pytest come from Debian (python3-django, python3-pytest), which installs
them for /usr/bin/python3 only; the python3 that Bazel finds first on PATH may be
another interpreter that does not see them. Then this re-executes the test under
/usr/bin/python3, keeping the environment (PYTHONPATH from Bazel's stub included).
"""

import os
import sys

DEBIAN_PYTHON = "/usr/bin/python3"


def main(test_file: str) -> int:
    """Runs pytest on test_file (with Bazel's test filter and XML output) and returns
    its exit code."""
    try:
        import django  # noqa: F401  (only to find out whether it imports)
        import pytest
    except ImportError:
        if os.path.realpath(sys.executable) != os.path.realpath(DEBIAN_PYTHON) \
                and os.path.exists(DEBIAN_PYTHON):
            os.execv(DEBIAN_PYTHON, [DEBIAN_PYTHON] + sys.argv)
        raise
    # -p no:cacheprovider: write no .pytest_cache into the runfiles tree.
    args = [test_file, "-v", "-p", "no:cacheprovider"]
    # Bazel's --test_filter selects tests (a pytest -k expression); its test.xml gets
    # one entry per test.
    if os.environ.get("TESTBRIDGE_TEST_ONLY"):
        args += ["-k", os.environ["TESTBRIDGE_TEST_ONLY"]]
    if os.environ.get("XML_OUTPUT_FILE"):
        args += ["--junitxml", os.environ["XML_OUTPUT_FILE"]]
    rc = pytest.main(args + sys.argv[1:])
    if rc == pytest.ExitCode.NO_TESTS_COLLECTED and os.environ.get("SHMDICT_SANITIZED"):
        # Under --config=asan/tsan/ubsan the test modules skip as a whole (a sanitized
        # libshmdict.so cannot be loaded into Python), which pytest reports as
        # "no tests collected".
        print("pytest_main: skipped as a whole in a sanitized build")
        return 0
    return int(rc)
