#!/usr/bin/env bash
# Runs sift-bench's standard matrix (issues 3 and 11) and writes
# BENCHMARKS.md: every row against sift, the plain zmq_proxy baseline,
# nats-server and redis-server (when installed; each run starts its own on a
# free 127.0.0.1 port and stops it by pid), and for the 1 -> 1 rows ZeroMQ
# with no broker; the modes rotating, 3 repetitions each, medians, ratios
# and targets. Only the generated section of BENCHMARKS.md (between its
# markers) is replaced; notes outside it stay.
#
# Usage: bench/run_matrix.sh [--quick] [--scale N] [--reps N] [--rows a,b]
#                            [--out FILE] [--results DIR] [--no-build]
#   --quick      every count divided by 10 (a smoke run of the instrument;
#                its numbers are not comparable with the targets)
#   --scale N    every count divided by N (also: $SIFT_BENCH_SCALE)
#   --reps N     repetitions per row and mode (default 3)
#   --rows LIST  only these rows: 1to1_16,1to1_128,1to1_1024,fanout4,4to1,
#                noise,queue4,latency,memory
#   --out FILE   default: BENCHMARKS.md at the top of the repository
#   --results DIR  where the raw --json output of every run goes
#                (default: a new directory under ${TMPDIR:-/tmp})
#   --no-build   use the binaries already in bazel-bin
# NATS and Redis are skipped, with a line saying so, when nats-server or
# redis-server is not on PATH (Debian: apt-get install nats-server
# redis-server); $NATS_SERVER and $REDIS_SERVER name other binaries.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scale="${SIFT_BENCH_SCALE:-1}"
reps=3
rows=""
out="$root/BENCHMARKS.md"
results=""
build=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) scale=10 ;;
    --scale) scale="$2"; shift ;;
    --reps) reps="$2"; shift ;;
    --rows) rows="$2"; shift ;;
    --out) out="$2"; shift ;;
    --results) results="$2"; shift ;;
    --no-build) build=0 ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_matrix.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

cd "$root"
if [[ $build -eq 1 ]]; then
  bazel build -c opt //broker:siftd //bench:sift-bench
fi
# Copy the binaries, so a rebuild by someone else during the run cannot swap
# them underneath it.
work="$(mktemp -d "${TMPDIR:-/tmp}/sift-matrix.XXXXXX")"
trap 'rm -rf "$work/bin"' EXIT
mkdir -p "$work/bin"
cp bazel-bin/bench/sift-bench bazel-bin/broker/siftd "$work/bin/"
[[ -n "$results" ]] || results="$work/results"

nats="${NATS_SERVER:-$(command -v nats-server || true)}"
redis="${REDIS_SERVER:-$(command -v redis-server || true)}"
[[ -n "$nats" ]] || echo "run_matrix: nats-server not found: the NATS column is skipped (apt-get install nats-server)" >&2
[[ -n "$redis" ]] || echo "run_matrix: redis-server not found: the Redis column is skipped (apt-get install redis-server)" >&2

echo "run_matrix: scale 1/$scale, $reps repetitions; raw results in $results" >&2
python3 "$root/bench/matrix.py" \
  --bench "$work/bin/sift-bench" --siftd "$work/bin/siftd" --root "$root" \
  --nats "$nats" --redis "$redis" \
  --out "$out" --reps "$reps" --scale "$scale" --rows "$rows" \
  --results "$results"
