#!/usr/bin/env bash
# Sets up what is missing, then builds and runs every test (unit and
# integration) with Bazel. Ends with "N passed, N failed", counted from the
# test cases in the run's results.
set -uo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh || exit 1
bep="$(mktemp -t sift-bep.XXXXXX.json)"
bazel test //... --build_event_json_file="$bep" "$@"
rc=$?
python3 tools/test_summary.py "$bep"
summary_rc=$?
rm -f "$bep"
if [ $rc -eq 0 ] && [ $summary_rc -ne 0 ]; then rc=$summary_rc; fi
exit $rc
