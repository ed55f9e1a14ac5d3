#!/usr/bin/env bash
# Builds sift's libFuzzer targets (fuzz/*_fuzz.cc) with Debian's clang and
# runs each for SECONDS (default 60). Not part of tools/test.sh.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]     TARGET: header, batch (default both)
#
# Bazel's toolchain here is gcc, which has no libFuzzer, so this script
# compiles directly: protoc generates proto/sift.pb.{h,cc} into the work
# directory, then clang++ -fsanitize=fuzzer,address,undefined builds the
# target with broker/protocol's sources, linking the system protobuf and
# abseil (pkg-config). Nothing is written inside the repository.
#
# Environment:
#   SIFT_FUZZ_WORKDIR  build outputs, corpus and crash files
#                      (default ${TMPDIR:-/tmp}/sift-fuzz-$UID; the corpus
#                      grows across runs, delete it to start over)
#   SIFT_FUZZ_ALLOW    known decoder divergences to tolerate, comma-separated:
#                      long_varint, invalid_utf8, merged_command (see
#                      docs/fuzzing.md); default none: every divergence fails
#   SIFT_FUZZ_ARGS     extra libFuzzer flags, e.g. "-jobs=2 -workers=2"
#
# Exit status: 0 if every target ran its time without a finding; 1 if one
# found a crash or a failed check (the input is saved and the command that
# replays it is printed); 2 on a usage or build error.
set -uo pipefail
cd "$(dirname "$0")/.."
repo="$(pwd)"

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "usage: tools/fuzz.sh [SECONDS] [header] [batch]" >&2
  exit 2
fi
shift $(( $# > 0 ? 1 : 0 ))
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(header batch)
for t in "${targets[@]}"; do
  if [ ! -f "fuzz/${t}_fuzz.cc" ]; then
    echo "fuzz: no target \"$t\" (fuzz/${t}_fuzz.cc)" >&2
    exit 2
  fi
done

# --- Packages -------------------------------------------------------------
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
updated=0
install_missing() {
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
        grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "fuzz: installing ${missing[*]}" >&2
  if [ $updated -eq 0 ]; then
    $SUDO apt-get update -qq || return 1
    updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends "${missing[@]}" >&2
}
install_missing clang pkg-config protobuf-compiler libprotobuf-dev libabsl-dev ||
  exit 2
clang_major="$(clang++ --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)"
if [ -z "$clang_major" ]; then
  echo "fuzz: cannot tell clang's version" >&2
  exit 2
fi
# The runtime behind -fsanitize=fuzzer, and libFuzzer itself.
install_missing "libclang-rt-${clang_major}-dev" "libfuzzer-${clang_major}-dev" ||
  exit 2

# --- Build ----------------------------------------------------------------
work="${SIFT_FUZZ_WORKDIR:-${TMPDIR:-/tmp}/sift-fuzz-$(id -u)}"
mkdir -p "$work"/{gen,obj,bin,seeds,corpus,artifacts,logs} || exit 2

protoc --cpp_out="$work/gen" -I "$repo" "$repo/proto/sift.proto" || exit 2

CXX=clang++
CXXFLAGS=(-std=c++17 -O1 -g -fno-omit-frame-pointer
  -fsanitize=address,undefined -fno-sanitize-recover=all
  -I"$repo" -I"$work/gen" $(pkg-config --cflags protobuf absl_strings))
# Only our code gets coverage instrumentation; protobuf and abseil are the
# system's (uninstrumented) shared libraries.
INSTRUMENT=(-fsanitize=fuzzer-no-link)
LIBS=($(pkg-config --libs protobuf absl_status absl_statusor absl_strings absl_cord) -lpthread)

sources=(
  "$work/gen/proto/sift.pb.cc"
  broker/protocol/codec.cc
  broker/protocol/batch.cc
  broker/protocol/headers.cc
  fuzz/decoder_checks.cc
)
objects=()
echo "fuzz: compiling with $($CXX --version | head -1)" >&2
for src in "${sources[@]}"; do
  obj="$work/obj/$(basename "${src%.cc}").o"
  flags=("${CXXFLAGS[@]}")
  # Generated code is not ours to fuzz-instrument beyond what it needs.
  case "$src" in "$work"/*) ;; *) flags+=("${INSTRUMENT[@]}") ;; esac
  $CXX "${flags[@]}" -c "$src" -o "$obj" || exit 2
  objects+=("$obj")
done
for t in "${targets[@]}"; do
  $CXX "${CXXFLAGS[@]}" -fsanitize=fuzzer "fuzz/${t}_fuzz.cc" "${objects[@]}" \
    "${LIBS[@]}" -o "$work/bin/${t}_fuzz" || exit 2
done

# --- Seeds ----------------------------------------------------------------
# fuzz/seeds.txt: "TARGET NAME HEX..." lines become files of a read-only
# seed directory per target; libFuzzer adds what it finds to corpus/TARGET.
for t in "${targets[@]}"; do
  rm -rf "${work:?}/seeds/$t"
  mkdir -p "$work/seeds/$t" "$work/corpus/$t" "$work/artifacts/$t"
done
while read -r target name hex; do
  case "$target" in ''|'#'*) continue ;; esac
  [ -d "$work/seeds/$target" ] || continue
  printf '%b' "$(echo "$hex" | sed 's/\([0-9a-fA-F][0-9a-fA-F]\) */\\x\1/g')" \
    > "$work/seeds/$target/$name"
done < fuzz/seeds.txt

# --- Run ------------------------------------------------------------------
declare -A max_len=([header]=4096 [batch]=16384)
status=0
summary=()
for t in "${targets[@]}"; do
  log="$work/logs/$t.log"
  echo "fuzz: running ${t}_fuzz for ${seconds}s (log $log)" >&2
  # shellcheck disable=SC2086  # SIFT_FUZZ_ARGS is a list of flags
  ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
    "$work/bin/${t}_fuzz" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len="${max_len[$t]:-4096}" -dict=fuzz/protocol.dict \
    -artifact_prefix="$work/artifacts/$t/" -print_final_stats=1 \
    ${SIFT_FUZZ_ARGS:-} "$work/corpus/$t" "$work/seeds/$t" > "$log" 2>&1
  rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  corpus="$(ls "$work/corpus/$t" | wc -l)"
  grep '^==sift-fuzz== tolerated' "$log" >&2
  if [ $rc -eq 0 ]; then
    summary+=("$t: ok, ${execs:-?} executions in ${seconds}s, corpus $corpus inputs")
  else
    status=1
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)"
    summary+=("$t: FAILED (exit $rc) after ${execs:-?} executions")
    echo "---- ${t}_fuzz: finding (full log: $log) ----" >&2
    grep -E '==sift-fuzz==|ERROR: (AddressSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error|SUMMARY' "$log" | head -20 >&2
    if [ -n "$artifact" ]; then
      echo "input: $artifact ($(od -An -tx1 -v "$artifact" | tr -s ' \n' ' ' | head -c 600))" >&2
      echo "replay: $work/bin/${t}_fuzz $artifact" >&2
    fi
  fi
done
printf 'fuzz: %s\n' "${summary[@]}"
exit $status
