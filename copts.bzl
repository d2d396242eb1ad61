"""Compiler flags shared by all of shmdict's own targets."""

SHMDICT_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wnon-virtual-dtor",
    "-Wno-unused-parameter",
]

# Tests and tools may use gtest/benchmark macros that trip some warnings.
SHMDICT_TEST_COPTS = SHMDICT_COPTS + [
    "-Wno-sign-compare",
]
