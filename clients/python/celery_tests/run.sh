#!/usr/bin/env bash
# Runs the Celery transport's tests (celery_tests/run.py) on Debian's
# /usr/bin/python3: a real siftd and real Celery worker processes.
#
# Under Bazel (//clients/python:celery_transport_test) the arguments are the
# siftd binary and the generated sift_pb2.py, relative to the runfiles root.
# By hand, with no arguments:
#     clients/python/celery_tests/run.sh [-- -v] [TEST_NAME_PATTERN...]
# it uses $SIFTD_PATH or bazel-bin/broker/siftd and generates sift_pb2.py
# into a temporary directory with protoc.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

if [ $# -ge 2 ] && [ -x "$1" ] && [ -f "$2" ]; then
  export SIFTD_PATH="$PWD/$1"
  export SIFT_PROTO_PATH="$PWD/$(dirname "$2")"
  shift 2
  exec /usr/bin/python3 clients/python/celery_tests/run.py "$@"
fi

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
export SIFTD_PATH="${SIFTD_PATH:-$root/bazel-bin/broker/siftd}"
if [ ! -x "$SIFTD_PATH" ]; then
  echo "run.sh: no siftd at $SIFTD_PATH (bazel build //broker:siftd)" >&2
  exit 1
fi
tmp="$(mktemp -d -t sift-celery.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
protoc --proto_path="$root/proto" --python_out="$tmp" "$root/proto/sift.proto"
export SIFT_PROTO_PATH="$tmp"
[ "${1:-}" = "--" ] && shift
/usr/bin/python3 "$here/run.py" "$@"
