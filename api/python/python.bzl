"""The extension module shmdict._native, and Python tests run against each of
SharedDict's cores."""

load("@local_config_python//:defs.bzl", "HAVE_PYTHON_HEADERS", "PY_EXT_SUFFIX")

# The extension module's target, named as the Python it is built for names its
# extensions: shmdict/_native.cpython-311-x86_64-linux-gnu.so beside the package's .py
# files. Only a CPython of that version imports it; any other uses the ctypes core.
NATIVE_MODULE = "shmdict/_native" + PY_EXT_SUFFIX

# The Python package's data: the extension module where Python's headers (Debian's
# python3-dev) let Bazel build it.
NATIVE_MODULE_DATA = [":" + NATIVE_MODULE] if HAVE_PYTHON_HEADERS else []

def shmdict_native_module(**kwargs):
    """cc_binary(name = NATIVE_MODULE, linkshared = True, **kwargs), with the Python
    headers; nothing where they are not installed."""
    if not HAVE_PYTHON_HEADERS:
        return
    native.cc_binary(
        name = NATIVE_MODULE,
        linkshared = True,
        deps = kwargs.pop("deps", []) + ["@local_config_python//:python_headers"],
        **kwargs
    )

def shmdict_py_test(name, srcs, deps = [], size = "small", **kwargs):
    """Two py_tests of the test file srcs[0]:

    - `name`: SharedDict on the extension module shmdict._native (the test checks that
      it is the core in use, where the Python headers let Bazel build it);
    - `name`_ctypes: on ctypes over libshmdict.so (SHMDICT_FORCE_CTYPES=1).
    """
    variants = [
        ("", {"SHMDICT_EXPECT_BACKEND": "native"} if HAVE_PYTHON_HEADERS else {}),
        ("_ctypes", {"SHMDICT_FORCE_CTYPES": "1", "SHMDICT_EXPECT_BACKEND": "ctypes"}),
    ]
    for suffix, env in variants:
        native.py_test(
            name = name + suffix,
            size = size,
            srcs = srcs,
            main = srcs[0],
            data = ["//api:libshmdict.so"],
            env = env,
            legacy_create_init = False,
            python_version = "PY3",
            srcs_version = "PY3",
            deps = deps + [":shmdict"],
            **kwargs
        )
