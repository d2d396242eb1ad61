"""Turns Debian's system libraries into Bazel repositories with upstream names.

Headers come from /usr/include, which the C++ toolchain already searches; each target
only adds the linker flags of the shared libraries it stands for. Code and BUILD files
use the names the upstream projects use (@com_google_absl//absl/status, ...), so they
would not change if the dependencies were later built from source.
"""

def _system_library_repo_impl(ctx):
    ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % ctx.name)
    ctx.file("BUILD.bazel", "")
    for package, targets in ctx.attr.packages.items():
        lines = ['package(default_visibility = ["//visibility:public"])', ""]
        for target in targets.split(";"):
            name, _, libs = target.partition("=")
            linkopts = ["-l" + lib for lib in libs.split(",") if lib]
            lines.append("cc_library(")
            lines.append("    name = %r," % name)
            lines.append("    linkopts = %r," % linkopts)
            lines.append(")")
            lines.append("")
        ctx.file(package + "/BUILD.bazel" if package else "BUILD.bazel", "\n".join(lines))

system_library_repo = repository_rule(
    implementation = _system_library_repo_impl,
    attrs = {
        # package path -> "target=lib1,lib2;target2=lib3"
        "packages": attr.string_dict(mandatory = True),
    },
    local = True,
)
