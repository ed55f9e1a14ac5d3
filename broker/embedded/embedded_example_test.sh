#!/usr/bin/env bash
# Runs the embedded-broker example and checks what it printed.
set -euo pipefail
out="$(timeout 30 broker/embedded/embedded_example --tcp)"
echo "$out"
grep -q '^broker listening on inproc://app-bus$' <<<"$out"
grep -q '^broker listening on tcp://127.0.0.1:[0-9][0-9]*$' <<<"$out"
grep -q '^notification on notify.user.42: your export is ready$' <<<"$out"
grep -q '^reply: HELLO FROM INSIDE$' <<<"$out"
