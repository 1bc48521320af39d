"""libFuzzer targets that also replay their seed corpus in the normal suite.

joule_fuzzer(name = "x_fuzzer", srcs = ["x_fuzzer.cc"], deps = [...]) makes:
- `x_fuzzer`: the libFuzzer binary. Tagged manual: it links only under
  --config=fuzz (clang-14 with -fsanitize=fuzzer); tools/fuzz.sh builds it.
- `x_fuzzer_replay`: a test that runs every file of corpus/x (the committed
  seeds, and any reproducer added there) through the same entry point, with
  whatever compiler and sanitizers the build uses.
"""

def joule_fuzzer(name, srcs, deps = [], data = []):
    corpus = "corpus/" + name[:-len("_fuzzer")]
    native.cc_binary(
        name = name,
        srcs = srcs,
        deps = deps,
        data = data,
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual", "fuzz"],
        testonly = True,
    )
    native.cc_test(
        name = name + "_replay",
        srcs = srcs,
        deps = deps + [":replay_main"],
        data = data + native.glob([corpus + "/**"]),
        args = ["tests/fuzz/" + corpus],
    )
