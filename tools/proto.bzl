"""sift_cc_proto: C++ code for .proto files from the system protoc.

proto_library/cc_proto_library need @com_google_protobuf, which cannot be
fetched offline, so this runs Debian's protoc in a genrule and wraps the
generated files in a cc_library linked against //third_party:protobuf.
"""

def sift_cc_proto(name, srcs, visibility = None):
    """Declares <name> (cc_library) for the messages in srcs (.proto files)."""
    bases = [s[:-len(".proto")] for s in srcs]
    hdrs = [b + ".pb.h" for b in bases]
    ccs = [b + ".pb.cc" for b in bases]
    native.genrule(
        name = name + "_gen",
        srcs = srcs,
        outs = hdrs + ccs,
        cmd = " ".join([
            "protoc",
            "--proto_path=.",
            "--cpp_out=$(GENDIR)",
        ] + ["$(location %s)" % s for s in srcs]),
        message = "protoc " + " ".join(srcs),
    )
    native.cc_library(
        name = name,
        srcs = ccs,
        hdrs = hdrs,
        deps = ["//third_party:protobuf"],
        visibility = visibility,
    )
