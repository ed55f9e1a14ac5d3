#!/usr/bin/env bash
# Generates the Python protobuf module for proto/sift.proto (sift_pb2.py),
# which the sift package needs and which is not committed.
#
#   clients/python/gen_proto.sh            # into clients/python/sift/_generated/
#   clients/python/gen_proto.sh DIR        # into DIR (then export SIFT_PROTO_PATH=DIR)
#
# Needs Debian's protobuf-compiler (tools/deps.sh installs it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$here/sift/_generated}"
mkdir -p "$out"
protoc --proto_path="$root/proto" --python_out="$out" "$root/proto/sift.proto"
echo "wrote $out/sift_pb2.py"
