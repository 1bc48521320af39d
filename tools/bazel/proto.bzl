"""C++ and gRPC code from a .proto with Debian's protoc and grpc_cpp_plugin.

Bazel 4.2.3's own proto rules would download their toolchain; this genrule
uses the installed compilers instead.
"""

def cc_grpc_proto(name, src, deps = [], grpc_lib = "@system//:grpc", **kwargs):
    base = src[:-len(".proto")]
    outs = [base + ext for ext in [".pb.h", ".pb.cc", ".grpc.pb.h", ".grpc.pb.cc"]]
    native.genrule(
        name = name + "_gen",
        srcs = [src],
        outs = outs,
        cmd = "protoc -I. --cpp_out=$(GENDIR) --grpc_out=$(GENDIR) " +
              "--plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) " +
              "$(location %s)" % src,
    )
    native.cc_library(
        name = name,
        srcs = [outs[1], outs[3]],
        hdrs = [outs[0], outs[2]],
        deps = deps + [grpc_lib],
        **kwargs
    )
