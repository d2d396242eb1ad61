"""Compiler flags shared by all of shmdict's own targets."""

SHMDICT_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wnon-virtual-dtor",
    "-Wno-unused-parameter",
    # libshmdict.so is position-independent: without this, GCC may not inline calls
    # among the library's own functions (another object could interpose them), and
    # the shared library's lookups would make calls the static one inlines.
    "-fno-semantic-interposition",
]

# Tests and tools may use gtest/benchmark macros that trip some warnings.
SHMDICT_TEST_COPTS = SHMDICT_COPTS + [
    "-Wno-sign-compare",
]
