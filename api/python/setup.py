"""Builds the shmdict package from the shmdict source tree that holds this directory
(api/python): pyproject.toml has the metadata, this file the compiled parts.

- The engine (core/*.cc but the tests, api/errors.cc, api/shmdict.cc) as a static
  library, compiled once with the system's C++ compiler (C++20);
- shmdict/_native*.so: the extension module (api/python/native/shmdict_native.cc)
  with the engine inside, linked to the system's Abseil and xxHash;
- shmdict/libshmdict.so: the C API (api/shmdict_c.cc) with the engine inside, for the
  ctypes core (SHMDICT_FORCE_CTYPES=1) and for programs in other languages.

setuptools wants every source relative to setup.py and below it: the engine's
sources (core/ and api/, *.cc and *.h) are copied to build/shmdict-engine/ first (a
file is copied again only when it changed).

Abseil's libraries are taken from pkg-config when it knows them, else from the list
below (Debian's libabsl-dev, as deps.bzl links them for Bazel).
"""

import glob
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, os.pardir, os.pardir))

if not os.path.isfile(os.path.join(ROOT, "api", "shmdict.h")):
    sys.exit("setup.py: %s is not inside a shmdict source tree (no api/shmdict.h two "
             "levels up): install from a clone, `pip install ./api/python`" % HERE)
os.chdir(HERE)

# Where the engine's sources are copied, relative to this directory.
STAGE = os.path.join("build", "shmdict-engine")

CXXFLAGS = [
    "-std=c++20",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    # As in copts.bzl: calls among the library's own functions may be inlined.
    "-fno-semantic-interposition",
]

# The Abseil components api/ and core/ use (status, statusor, strings, str_format,
# time; cord for status payloads), for pkg-config.
ABSL_MODULES = ["absl_status", "absl_statusor", "absl_strings", "absl_str_format",
                "absl_time", "absl_cord"]
# Without pkg-config: the libraries those need (deps.bzl's _ABSL_STATUS list).
ABSL_LIBRARIES = [
    "absl_status", "absl_statusor", "absl_cord", "absl_cord_internal", "absl_cordz_info",
    "absl_cordz_handle", "absl_cordz_functions", "absl_exponential_biased",
    "absl_str_format_internal", "absl_synchronization", "absl_graphcycles_internal",
    "absl_malloc_internal", "absl_stacktrace", "absl_symbolize", "absl_debugging_internal",
    "absl_demangle_internal", "absl_time", "absl_time_zone", "absl_civil_time",
    "absl_strings", "absl_strings_internal", "absl_int128", "absl_base",
    "absl_raw_logging_internal", "absl_log_severity", "absl_spinlock_wait",
    "absl_throw_delegate",
]


def abseil_libraries():
    """The -l names of Abseil's libraries, and extra linker flags."""
    if shutil.which("pkg-config"):
        r = subprocess.run(["pkg-config", "--libs"] + ABSL_MODULES,
                           capture_output=True, text=True)
        if r.returncode == 0:
            flags = r.stdout.split()
            return ([f[2:] for f in flags if f.startswith("-l")],
                    [f for f in flags if not f.startswith("-l")])
    return ABSL_LIBRARIES, []


def stage_engine():
    """Copies core/ and api/ (*.cc, *.h, *.lds) to STAGE; returns the engine's
    sources there: core/*.cc but the tests, api/errors.cc, api/shmdict.cc."""
    for folder in ("core", "api"):
        os.makedirs(os.path.join(STAGE, folder), exist_ok=True)
        for pattern in ("*.cc", "*.h", "*.lds"):
            for source in glob.glob(os.path.join(ROOT, folder, pattern)):
                target = os.path.join(STAGE, folder, os.path.basename(source))
                if not os.path.exists(target) or \
                        open(source, "rb").read() != open(target, "rb").read():
                    shutil.copy2(source, target)
    core = [f for f in sorted(glob.glob(os.path.join(STAGE, "core", "*.cc")))
            if not f.endswith("_test.cc")]
    return core + [os.path.join(STAGE, "api", name) for name in ("errors.cc", "shmdict.cc")]


ENGINE = stage_engine()
HEADERS = sorted(glob.glob(os.path.join(STAGE, "*", "*.h")))


ABSL, ABSL_FLAGS = abseil_libraries()
# The engine first: a static library must come before the libraries it uses.
LIBRARIES = ["shmdict_engine"] + ABSL + ["xxhash", "pthread"]


class BuildExt(build_ext):
    """build_ext that names the C library shmdict/libshmdict.so (as _clib looks for
    it), not after the Python ABI as extension modules are named."""

    def get_ext_filename(self, fullname):
        # Called with the full name, and with the last part only (the package's
        # directory is added to that).
        if fullname == "shmdict.libshmdict":
            return os.path.join("shmdict", "libshmdict.so")
        if fullname == "libshmdict":
            return "libshmdict.so"
        return super().get_ext_filename(fullname)

    def get_export_symbols(self, ext):
        if ext.name == "shmdict.libshmdict":
            return []  # the version script says what it exports
        return super().get_export_symbols(ext)


def version_script(path):
    return "-Wl,--version-script=" + path


setup(
    libraries=[(
        "shmdict_engine",
        {"sources": ENGINE, "include_dirs": [STAGE], "cflags": CXXFLAGS,
         "obj_deps": {"": HEADERS}},
    )],
    ext_modules=[
        Extension(
            "shmdict._native",
            sources=[os.path.join("native", "shmdict_native.cc")],
            include_dirs=[STAGE],
            libraries=LIBRARIES,
            extra_compile_args=CXXFLAGS,
            extra_link_args=ABSL_FLAGS + [
                version_script(os.path.join(HERE, "native", "shmdict_native.lds"))],
            depends=ENGINE + HEADERS,
            language="c++",
        ),
        Extension(
            "shmdict.libshmdict",
            sources=[os.path.join(STAGE, "api", "shmdict_c.cc")],
            include_dirs=[STAGE],
            libraries=LIBRARIES,
            extra_compile_args=CXXFLAGS,
            extra_link_args=ABSL_FLAGS + [
                version_script(os.path.join(HERE, STAGE, "api", "libshmdict.lds")),
                "-Wl,-z,defs"],
            depends=ENGINE + HEADERS,
            language="c++",
        ),
    ],
    cmdclass={"build_ext": BuildExt},
)
