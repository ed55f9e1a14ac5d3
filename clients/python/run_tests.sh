#!/usr/bin/env bash
# Runs the Python client's tests (tests/run.py: unittest, JUnit XML to
# $XML_OUTPUT_FILE when set) on Debian's /usr/bin/python3.
#
# Under Bazel (//clients/python:python_client_test) the arguments are the
# siftd binary and the generated sift_pb2.py, relative to the runfiles root.
# By hand, from anywhere, with no arguments:
#     clients/python/run_tests.sh [-- -v] [TEST_NAME_PATTERN...]
# it uses $SIFTD_PATH or bazel-bin/broker/siftd and generates sift_pb2.py
# into a temporary directory with protoc.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

if [ $# -ge 2 ] && [ -x "$1" ] && [ -f "$2" ]; then
  export SIFTD_PATH="$PWD/$1"
  export SIFT_PROTO_PATH="$PWD/$(dirname "$2")"
  shift 2
  exec /usr/bin/python3 clients/python/tests/run.py "$@"
fi

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export SIFTD_PATH="${SIFTD_PATH:-$root/bazel-bin/broker/siftd}"
if [ ! -x "$SIFTD_PATH" ]; then
  echo "run_tests.sh: no siftd at $SIFTD_PATH (bazel build //broker:siftd)" >&2
  exit 1
fi
tmp="$(mktemp -d -t sift-python.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
protoc --proto_path="$root/proto" --python_out="$tmp" "$root/proto/sift.proto"
export SIFT_PROTO_PATH="$tmp"
[ "${1:-}" = "--" ] && shift
/usr/bin/python3 "$here/tests/run.py" "$@"
