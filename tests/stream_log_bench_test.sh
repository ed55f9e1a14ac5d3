#!/usr/bin/env bash
# //broker/store:stream_log_bench is bounded and cleans up after itself: a
# tiny run (about a second, a few MiB) leaves no files behind; a run that
# takes longer than SIFT_BENCH_WAIT_S fails with an error instead of going
# on; a bad flag and SIGTERM in the middle of a run leave nothing either.
# $STREAM_LOG_BENCH overrides the binary (to check another build).
set -euo pipefail

bench="${STREAM_LOG_BENCH:-broker/store/stream_log_bench}"
base="${TEST_TMPDIR:-/tmp}/stream_log_bench_test.$$"
mkdir -p "$base"
trap 'rm -rf "$base"' EXIT
export SIFT_BENCH_DIR="$base" SIFT_BENCH_READ_MIB=1
failures=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# Fails the check named $1 if anything is left under $base, then empties it.
expect_clean() {
  local left
  left="$(find "$base" -mindepth 1 | head -5)"
  if [[ -n "$left" ]]; then
    fail "$1: left behind: $left"
    rm -rf "${base:?}"/*
  fi
}

# 1. A tiny run of each kind of benchmark.
status=0
out="$(timeout 60 "$bench" \
  --benchmark_filter='BM_Append/128/2|BM_Read/128|BM_RawWriteFdatasync' \
  --benchmark_min_time=0.01 2>&1)" || status=$?
echo "$out"
[[ $status -eq 0 ]] || fail "tiny run: exit status $status"
for name in BM_Append/128/2 BM_Read/128 BM_RawWriteFdatasync; do
  grep -q "^$name/real_time " <<<"$out" || fail "tiny run: no $name line"
done
if grep -q 'ERROR OCCURRED' <<<"$out"; then fail "tiny run: an error"; fi
expect_clean "tiny run"

# 2. The time bound: a run asked to last 10 s is failed after 1 s.
status=0
start=$SECONDS
out="$(SIFT_BENCH_WAIT_S=1 timeout 60 "$bench" \
  --benchmark_filter=BM_RawWriteFdatasync --benchmark_min_time=10 2>&1)" ||
  status=$?
echo "$out"
[[ $status -eq 0 ]] || fail "time bound: exit status $status"
grep -q "ERROR OCCURRED: 'run took longer than 1s" <<<"$out" ||
  fail "time bound: no error for the run over SIFT_BENCH_WAIT_S"
(( SECONDS - start < 6 )) || fail "time bound: took $((SECONDS - start)) s"
expect_clean "time bound"

# 3. A bad flag and a bad setting.
status=0
timeout 60 "$bench" --no_such_flag >/dev/null 2>&1 || status=$?
[[ $status -eq 1 ]] || fail "bad flag: exit status $status, want 1"
expect_clean "bad flag"
status=0
out="$(SIFT_BENCH_READ_MIB=0 timeout 60 "$bench" 2>&1)" || status=$?
[[ $status -eq 2 ]] || fail "bad SIFT_BENCH_READ_MIB: exit status $status"
grep -q 'SIFT_BENCH_READ_MIB=0: want a whole number from 1 to 4096' \
  <<<"$out" || fail "bad SIFT_BENCH_READ_MIB: message: $out"
expect_clean "bad setting"

# 4. SIGTERM while a benchmark is writing: exit 128 + 15, nothing left.
SIFT_BENCH_WAIT_S=30 timeout 60 "$bench" \
  --benchmark_filter='BM_Append/128/2' --benchmark_min_time=30 \
  >"$TEST_TMPDIR/sigterm.out" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  [[ -n "$(find "$base" -mindepth 2 -type f | head -1)" ]] && break
  sleep 0.1
done
[[ -n "$(find "$base" -mindepth 2 -type f | head -1)" ]] ||
  fail "sigterm: no files appeared"
kill -TERM "$pid"
status=0
wait "$pid" || status=$?
cat "$TEST_TMPDIR/sigterm.out"
[[ $status -eq 143 ]] || fail "sigterm: exit status $status, want 143"
expect_clean "sigterm"

if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all checks passed"
