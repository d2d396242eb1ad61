"""The headers of the system's Python 3 as a Bazel repository, for extension modules.

    @local_config_python//:python_headers   a cc_library: Python.h and the rest
    @local_config_python//:defs.bzl         HAVE_PYTHON_HEADERS, PY_EXT_SUFFIX

The interpreter asked is /usr/bin/python3 (Debian's; its headers come with
python3-dev). PY_EXT_SUFFIX is the file-name suffix its extension modules have
(".cpython-311-x86_64-linux-gnu.so"): only a CPython of that version imports a module
so named, and any other Python falls back to what does not need the module. Without
python3-dev, HAVE_PYTHON_HEADERS is False and python_headers is empty: the targets
that need it are left out (see api/python/BUILD.bazel).
"""

_QUERY = """
import os, sysconfig
include = sysconfig.get_paths()["include"]
print(include if os.path.exists(os.path.join(include, "Python.h")) else "")
print(sysconfig.get_config_var("EXT_SUFFIX") or "")
"""

def _python_configure_impl(ctx):
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)
    include = ""
    suffix = ""
    if ctx.path(ctx.attr.interpreter).exists:
        result = ctx.execute([ctx.attr.interpreter, "-c", _QUERY])
        if result.return_code == 0:
            lines = result.stdout.strip("\n").split("\n")
            if len(lines) == 2:
                include, suffix = lines[0].strip(), lines[1].strip()
    have = bool(include) and bool(suffix)
    if have:
        ctx.symlink(include, "include")
    ctx.file("BUILD.bazel", "\n".join([
        'package(default_visibility = ["//visibility:public"])',
        "",
        "# The headers of %s (%s)." % (ctx.attr.interpreter, include or "not installed"),
        "cc_library(",
        '    name = "python_headers",',
        '    hdrs = glob(["include/**/*.h"]),',
        '    includes = ["include"],' if have else "",
        ")",
        "",
    ]))
    ctx.file("defs.bzl", "\n".join([
        '"""What the system\'s Python offers extension modules (third_party/python)."""',
        "",
        "HAVE_PYTHON_HEADERS = %s" % have,
        "PY_EXT_SUFFIX = %r" % (suffix if have else ".so"),
        "",
    ]))

python_configure = repository_rule(
    implementation = _python_configure_impl,
    attrs = {
        "interpreter": attr.string(default = "/usr/bin/python3"),
    },
    # Looked at again by `bazel sync --configure` (e.g. after python3-dev is
    # installed) and when the Bazel server restarts.
    configure = True,
    local = True,
)
