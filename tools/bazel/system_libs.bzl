"""Turns Debian's installed libraries into cc_library targets.

Each entry maps a target name to pkg-config modules plus optional extras, so
the build uses exactly what apt installed and never downloads anything.
"""

def _split_flags(out):
    defines, linkopts, includes = [], [], []
    for flag in out.split(" "):
        flag = flag.strip()
        if not flag:
            continue
        if flag.startswith("-D"):
            defines.append(flag[2:])
        elif flag.startswith("-I"):
            includes.append(flag[2:])
        else:
            linkopts.append(flag)
    return defines, linkopts, includes

def _system_libs_impl(rctx):
    lines = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, spec in rctx.attr.libs.items():
        # spec: "modules=a b;linkopts=-lx -ly;includes=/usr/include/foo"
        fields = {}
        for part in spec.split(";"):
            if "=" in part:
                k, v = part.split("=", 1)
                fields[k.strip()] = [s for s in v.split(" ") if s]
        defines, linkopts, includes = [], [], []
        modules = fields.get("modules", [])
        if modules:
            cflags = rctx.execute(["pkg-config", "--cflags"] + modules)
            libs = rctx.execute(["pkg-config", "--libs"] + modules)
            if cflags.return_code != 0 or libs.return_code != 0:
                fail("pkg-config could not find %s (run tools/setup.sh): %s" %
                     (" ".join(modules), cflags.stderr + libs.stderr))
            d, l, _ = _split_flags(cflags.stdout.replace("\n", " "))
            defines += d
            linkopts += l
            d, l, _ = _split_flags(libs.stdout.replace("\n", " "))
            linkopts += l
        linkopts += fields.get("linkopts", [])

        # Headers outside the compiler's default search path are linked into
        # the repository so that `includes` can name them.
        inc_dirs = []
        for i, path in enumerate(fields.get("includes", [])):
            link = "inc_%s_%d" % (name, i)
            rctx.symlink(path, link)
            inc_dirs.append(link)

        lines.append("cc_library(")
        lines.append('    name = "%s",' % name)
        if inc_dirs:
            lines.append("    hdrs = glob([%s]),"
                         % ", ".join(['"%s/**"' % d for d in inc_dirs]))
            lines.append("    includes = %s," % repr(inc_dirs))
        lines.append("    defines = %s," % repr(defines))
        lines.append("    linkopts = %s," % repr(linkopts))
        lines.append(")")
        lines.append("")
    rctx.file("WORKSPACE", 'workspace(name = "%s")\n' % rctx.name)
    rctx.file("BUILD", "\n".join(lines))

system_libs = repository_rule(
    implementation = _system_libs_impl,
    attrs = {"libs": attr.string_dict(mandatory = True)},
    local = True,
)
