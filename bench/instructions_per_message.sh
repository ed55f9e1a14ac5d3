#!/usr/bin/env bash
# Instructions siftd executes per message, counted by callgrind: unlike
# throughput, the count hardly depends on the machine's load, so it can
# resolve a few percent between two commits on a busy 2-core machine.
#
#   bench/instructions_per_message.sh BIN_DIR [SIZE] [COUNT]
#
# BIN_DIR holds siftd and sift-bench (e.g. a copy of bazel-bin's, built with
# -c opt). Runs 1 pub -> 1 sub of COUNT (default 300000) messages of SIZE
# (default 128) bytes against siftd under valgrind on a free loopback port,
# and prints the instructions per message (callgrind's total / COUNT,
# startup included). Counts vary about ±5% between runs (batch sizes depend
# on timing): compare medians of 3. Needs valgrind (Debian's package).
set -euo pipefail
dir=$1; size=${2:-128}; count=${3:-300000}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=$(mktemp -t sift-callgrind.XXXXXX)
valgrind --tool=callgrind --callgrind-out-file="$out" "$dir/siftd" \
  --endpoints=tcp://127.0.0.1:$port --max_pending_bytes_per_client=4294967296 \
  --max_pending_bytes=17179869184 >/dev/null 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 150); do
  (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break
  sleep 0.2
done
"$dir/sift-bench" --server tcp://127.0.0.1:$port --size "$size" \
  --count "$count" --quiet --json --timeout 600 >/dev/null
kill -TERM $pid
wait $pid || true
ir=$(grep -m1 '^summary:' "$out" | awk '{print $2}')
echo "$dir size=$size count=$count instructions=$ir per_message=$((ir / count))"
