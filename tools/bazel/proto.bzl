"""C++ and gRPC code from a .proto with Debian's protoc and grpc_cpp_plugin.

Bazel 4.2.3's own proto rules would download their toolchain; this genrule
uses the installed compilers instead.
"""

def cc_grpc_proto(
        name,
        src,
        deps = [],
        grpc_lib = "@system//:grpc",
        grpc_header_includes = [],
        own_traits_requests = [],
        srcs = [],
        hdrs = [],
        **kwargs):
    """The messages and services of `src` as one cc_library.

    grpc_header_includes: headers the generated .grpc.pb.h includes first
    (e.g. SerializationTraits specializations); list them in `hdrs` too.
    own_traits_requests: request messages (C++ names) whose unary server
    handlers must parse through SerializationTraits<that message>. The
    plugin's unary handlers parse as SerializationTraits<MessageLite>
    (one instantiation for all messages), which would bypass a
    specialization; streaming handlers already use the message's own.
    """
    base = src[:-len(".proto")]
    outs = [base + ext for ext in [".pb.h", ".pb.cc", ".grpc.pb.h", ".grpc.pb.cc"]]
    grpc_opt = ""
    if grpc_header_includes:
        grpc_opt = "--grpc_opt=additional_header_includes=%s " % ":".join(grpc_header_includes)
    post = ""
    for req in own_traits_requests:
        post += (" && sed -i 's/\\(RpcMethodHandler< [A-Za-z_:]*, ::%s, [A-Za-z0-9_:]*\\), " +
                 "::grpc::protobuf::MessageLite, ::grpc::protobuf::MessageLite>/\\1>/' " +
                 "$(location %s)") % (req, base + ".grpc.pb.cc")
        post += (" && grep -q 'RpcMethodHandler< [A-Za-z_:]*, ::%s, [A-Za-z0-9_:]*>' " +
                 "$(location %s)") % (req, base + ".grpc.pb.cc")
    native.genrule(
        name = name + "_gen",
        srcs = [src],
        outs = outs,
        cmd = "protoc -I. --cpp_out=$(GENDIR) --grpc_out=$(GENDIR) " + grpc_opt +
              "--plugin=protoc-gen-grpc=$$(command -v grpc_cpp_plugin) " +
              "$(location %s)" % src + post,
    )
    native.cc_library(
        name = name,
        srcs = [outs[1], outs[3]] + srcs,
        hdrs = [outs[0], outs[2]] + hdrs,
        deps = deps + [grpc_lib],
        **kwargs
    )
