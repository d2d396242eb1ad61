"""The external repositories shmdict needs, for its own WORKSPACE and for workspaces
that depend on it. Everything comes from Debian packages (tools/bazel installs them);
nothing is downloaded.

    # In another workspace's WORKSPACE:
    local_repository(name = "shmdict", path = "/path/to/shmdict")
    load("@shmdict//:deps.bzl", "shmdict_dependencies")
    shmdict_dependencies()

A repository that the calling workspace has already declared (under the same name)
is left as it is, so a workspace can bring its own, e.g. Abseil built from source.
"""

load("//third_party/python:python_configure.bzl", "python_configure")
load("//third_party/system:system_libs.bzl", "system_library_repo")

def _local_folder_impl(ctx):
    # The folder holding `marker`: a folder of the shmdict repository, found from a
    # label, so that it works whichever workspace calls shmdict_dependencies() (a
    # local_repository path would be relative to the calling workspace).
    folder = ctx.path(ctx.attr.marker).dirname
    for child in folder.readdir():
        ctx.symlink(child, child.basename)

_local_folder = repository_rule(
    implementation = _local_folder_impl,
    attrs = {"marker": attr.label(mandatory = True, allow_single_file = True)},
    local = True,
)

_ABSL_BASE = "absl_base,absl_raw_logging_internal,absl_log_severity,absl_spinlock_wait,absl_throw_delegate"

_ABSL_STRINGS = "absl_strings,absl_strings_internal,absl_int128," + _ABSL_BASE

_ABSL_TIME = "absl_time,absl_time_zone,absl_civil_time," + _ABSL_STRINGS

_ABSL_SYNC = "absl_synchronization,absl_graphcycles_internal,absl_malloc_internal,absl_stacktrace,absl_symbolize,absl_debugging_internal,absl_demangle_internal," + _ABSL_TIME

_ABSL_STATUS = "absl_status,absl_statusor,absl_cord,absl_cord_internal,absl_cordz_info,absl_cordz_handle,absl_cordz_functions,absl_exponential_biased,absl_str_format_internal," + _ABSL_SYNC

def _maybe(rule, name, **kwargs):
    if not native.existing_rule(name):
        rule(name = name, **kwargs)

def shmdict_dependencies():
    """Declares rules_java, rules_cc, remote_coverage_tools, the system libraries
    (@com_google_absl, @xxhash, @com_google_googletest, @com_github_google_benchmark)
    and the system Python's headers (@local_config_python)."""

    # Bazel 4 registers JDK toolchains even for pure C++ builds.
    _maybe(
        native.local_repository,
        name = "rules_java",
        path = "/usr/share/bazel/rules/java",
    )

    # Bazel 4's @bazel_tools loads @rules_cc//cc:defs.bzl; Debian's rules_cc is too
    # new for Bazel 4. third_party/rules_cc re-exports the native rules.
    _maybe(
        _local_folder,
        name = "rules_cc",
        marker = Label("//third_party/rules_cc:WORKSPACE"),
    )

    # Every cc_test names the coverage tools; `bazel coverage` is not supported.
    _maybe(
        _local_folder,
        name = "remote_coverage_tools",
        marker = Label("//third_party/remote_coverage_tools:WORKSPACE"),
    )

    _maybe(
        system_library_repo,
        name = "com_google_absl",
        packages = {
            "absl/base": "base=" + _ABSL_BASE + ";core_headers=",
            "absl/strings": "strings=" + _ABSL_STRINGS + ";str_format=absl_str_format_internal," + _ABSL_STRINGS + ";cord=absl_cord,absl_cord_internal,absl_cordz_info,absl_cordz_handle,absl_cordz_functions," + _ABSL_SYNC,
            "absl/status": "status=" + _ABSL_STATUS + ";statusor=" + _ABSL_STATUS,
            "absl/time": "time=" + _ABSL_TIME,
            "absl/synchronization": "synchronization=" + _ABSL_SYNC,
            "absl/types": "span=;optional=;variant=",
            "absl/functional": "function_ref=",
            "absl/container": "flat_hash_map=absl_raw_hash_set,absl_hash,absl_city,absl_low_level_hash," + _ABSL_BASE,
            "absl/hash": "hash=absl_hash,absl_city,absl_low_level_hash",
            "absl/random": "random=absl_random_internal_pool_urbg,absl_random_internal_randen,absl_random_internal_randen_hwaes,absl_random_internal_randen_hwaes_impl,absl_random_internal_randen_slow,absl_random_internal_platform,absl_random_internal_seed_material,absl_random_seed_gen_exception," + _ABSL_BASE,
            "absl/flags": "flag=absl_flags_internal,absl_flags_marshalling,absl_flags_reflection,absl_flags_config,absl_flags_program_name,absl_flags_private_handle_accessor,absl_flags_commandlineflag,absl_flags_commandlineflag_internal," + _ABSL_STATUS + ";parse=absl_flags_parse,absl_flags_usage,absl_flags_usage_internal,absl_flags_internal,absl_flags_marshalling,absl_flags_reflection,absl_flags_config,absl_flags_program_name,absl_flags_private_handle_accessor,absl_flags_commandlineflag,absl_flags_commandlineflag_internal," + _ABSL_STATUS + ";usage=absl_flags_usage,absl_flags_usage_internal," + _ABSL_STATUS,
        },
    )

    _maybe(
        system_library_repo,
        name = "xxhash",
        packages = {"": "xxhash=xxhash"},
    )

    _maybe(
        system_library_repo,
        name = "com_google_googletest",
        packages = {"": "gtest=gtest,pthread;gtest_main=gtest_main,gtest,pthread;gmock=gmock,gtest,pthread;gmock_main=gmock_main,gmock,gtest,pthread"},
    )

    _maybe(
        system_library_repo,
        name = "com_github_google_benchmark",
        packages = {"": "benchmark=benchmark,pthread;benchmark_main=benchmark_main,benchmark,pthread"},
    )

    # Python.h for the extension module shmdict._native (api/python).
    _maybe(
        python_configure,
        name = "local_config_python",
    )
