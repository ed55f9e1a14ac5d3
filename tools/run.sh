#!/usr/bin/env bash
# Sets up what is missing, builds siftd and runs it with its embedded default
# configuration (tcp://127.0.0.1:7440). Extra arguments go to siftd.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh
bazel build //broker:siftd //clients/cli:sift
exec bazel-bin/broker/siftd "$@"
