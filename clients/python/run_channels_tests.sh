#!/usr/bin/env bash
# Runs the Django Channels layer's tests (tests/run_channels.py: unittest,
# JUnit XML to $XML_OUTPUT_FILE when set) on Debian's /usr/bin/python3.
#
# Under Bazel (//clients/python:python_channels_test,
# //clients/python:django_notify_e2e_test) the arguments are the siftd
# binary, the generated sift_pb2.py (relative to the runfiles root), then
# the test files. By hand, from the repository root:
#     clients/python/run_channels_tests.sh FILE.py... [-v] [-k PATTERN]
# uses $SIFTD_PATH or bazel-bin/broker/siftd and generates sift_pb2.py into
# a temporary directory with protoc.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

if [ $# -ge 2 ] && [ -x "$1" ] && [ -f "$2" ]; then
  export SIFTD_PATH="$PWD/$1"
  export SIFT_PROTO_PATH="$PWD/$(dirname "$2")"
  shift 2
  exec /usr/bin/python3 clients/python/tests/run_channels.py "$@"
fi

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export SIFTD_PATH="${SIFTD_PATH:-$root/bazel-bin/broker/siftd}"
if [ ! -x "$SIFTD_PATH" ]; then
  echo "run_channels_tests.sh: no siftd at $SIFTD_PATH (bazel build //broker:siftd)" >&2
  exit 1
fi
tmp="$(mktemp -d -t sift-channels.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
protoc --proto_path="$root/proto" --python_out="$tmp" "$root/proto/sift.proto"
export SIFT_PROTO_PATH="$tmp"
/usr/bin/python3 "$here/tests/run_channels.py" "$@"
