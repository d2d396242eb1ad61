"""shmdict_fuzz_test: a fuzz target that is also a regression test of its seed corpus."""

load("//:copts.bzl", "SHMDICT_TEST_COPTS")

def shmdict_fuzz_test(name, srcs, deps = [], size = "small", tags = []):
    """A fuzz target built two ways.

    By default (any compiler) it links tests/fuzz/standalone_main.cc and, as a test,
    runs every file of tests/fuzz/corpus/<name>/ once through LLVMFuzzerTestOneInput.
    With --config=fuzz (clang, --define=shmdict_fuzz=libfuzzer) it links libFuzzer
    instead; as a test it then replays the same corpus with -runs=0, and run_fuzz.sh
    runs the binary itself to fuzz.

    Args:
      name: the target, also the name of its corpus directory.
      srcs: the sources, one of which defines LLVMFuzzerTestOneInput.
      deps: their dependencies.
      size: the test size.
      tags: test tags.
    """
    corpus = "corpus/" + name
    native.cc_test(
        name = name,
        size = size,
        srcs = srcs,
        copts = SHMDICT_TEST_COPTS,
        data = native.glob([corpus + "/**"]),
        args = select({
            ":libfuzzer": ["-runs=0"],
            "//conditions:default": [],
        }) + ["tests/fuzz/" + corpus],
        linkopts = select({
            ":libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        tags = tags,
        deps = deps + select({
            ":libfuzzer": [],
            "//conditions:default": [":standalone_main"],
        }),
    )
