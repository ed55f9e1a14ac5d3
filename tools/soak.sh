#!/usr/bin/env bash
# Soaks a real siftd with hostile traffic for SECONDS (default 60) while a
# healthy publisher and subscriber count their stream; see fuzz/soak.py and
# docs/fuzzing.md. Not part of tools/test.sh.
#
#   tools/soak.sh [SECONDS] [fuzz/soak.py options...]
#   e.g. tools/soak.sh 300 --attackers 3 --connections 16 --rate 2000
#
# Builds //broker:siftd with Bazel and runs a private copy of the binary (so
# a concurrent build cannot swap it mid-run), or runs $SIFT_SOAK_SIFTD if
# set. Exit status: 0 pass; 1 the healthy stream lost or duplicated
# something, siftd died, or its RSS grew by more than 50 MB; 2 it could not
# run.
set -uo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: tools/soak.sh [SECONDS] [fuzz/soak.py options...]" >&2
  exit 2
fi
shift $(( $# > 0 ? 1 : 0 ))

# Packages: what Bazel needs (tools/deps.sh), then the soak's own.
tools/deps.sh || exit 2
missing=()
for p in python3-zmq python3-protobuf protobuf-compiler; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "soak: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      --no-install-recommends "${missing[@]}" >&2 || exit 2
fi

bin_dir="$(mktemp -d -t sift-soak-bin.XXXXXX)"
child=""
cleanup() {
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null
    wait "$child" 2>/dev/null
  fi
  rm -rf "$bin_dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -n "${SIFT_SOAK_SIFTD:-}" ]; then
  cp "$SIFT_SOAK_SIFTD" "$bin_dir/siftd" || exit 2
else
  build_log="$bin_dir/build.log"
  echo "soak: bazel build //broker:siftd" >&2
  if ! bazel build //broker:siftd > "$build_log" 2>&1; then
    tail -30 "$build_log" >&2
    echo "soak: bazel build failed" >&2
    exit 2
  fi
  cp "$(bazel info bazel-bin 2>/dev/null)/broker/siftd" "$bin_dir/siftd" || exit 2
fi

# Debian's python3 (python3-zmq, python3-protobuf), whatever python3 the
# PATH prefers.
/usr/bin/python3 fuzz/soak.py --siftd "$bin_dir/siftd" --seconds "$seconds" "$@" &
child=$!
wait "$child"
rc=$?
child=""
exit $rc
