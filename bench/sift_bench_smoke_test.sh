#!/usr/bin/env bash
# Smoke test of sift-bench: tiny workloads in sift mode (against a spawned
# siftd), proxy mode (the zmq_proxy baseline) and direct mode (ZeroMQ with
# no broker), checking that --json reports sane fields and that every
# message arrived exactly once. It never checks how fast anything is
# (DESIGN.md: tests check correctness, not speed), and never runs NATS or
# Redis (bench/run_matrix.sh does, when they are installed).
#
# Usage: sift_bench_smoke_test.sh SIFT_BENCH SIFTD
set -euo pipefail

bench="$1"
siftd="$2"
failures=0

# check LABEL JSON: validates one --json report.
check() {
  local label="$1" json="$2"
  if ! python3 - "$label" "$json" <<'PY'
import json, sys
label, text = sys.argv[1], sys.argv[2]
r = json.loads(text)
problems = []
def want(cond, what):
    if not cond:
        problems.append(what)
if r["kind"] == "messages":
    want(r["delivered"] == 1.0, "delivered %r != 1.0" % r["delivered"])
    want(r["complete"] is True, "complete is not true")
    want(r["received"] == r["expected"] > 0, "received != expected")
    want(r["duplicates"] == 0 and r["invalid"] == 0, "duplicates/invalid")
    # A publisher's messages arrive in order, but for confirmed publishes
    # refused for now and sent again (publish_retries).
    if r["workload"]["confirm_window"] <= 1 or r["publish_retries"] == 0:
        want(r["out_of_order"] == 0, "out of order")
    want(r["msgs_per_s"] > 0, "msgs_per_s not > 0")
    want(r["mb_per_s"] > 0, "mb_per_s not > 0")
    want(r["sent"] == r["workload"]["count"] * r["workload"]["pubs"],
         "sent != count * pubs")
    lat = r["latency_us"]
    for k in ("p50", "p90", "p99", "p999", "max", "mean"):
        want(k in lat and lat[k] >= 0, "latency %s missing" % k)
    want(lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p999"] <= lat["max"],
         "latency percentiles not ordered")
    # Paced runs time every message; unpaced ones one in 64 per publisher.
    if r["workload"]["rate"] > 0:
        want(lat["count"] == r["received"], "latency count != received")
    else:
        want(0 < lat["count"] <= r["received"], "latency count")
    want(len(r["subscribers"]) == r["workload"]["subs"], "subscriber rows")
    want(len(r["publishers"]) == r["workload"]["pubs"], "publisher rows")
    for s in r["subscribers"]:
        want(s["received"] > 0 and s["msgs_per_s"] > 0, "subscriber %d" % s["id"])
        want("p99" in s["latency_us"], "subscriber latency")
    srv = r["server"]
    if r["mode"] != "direct":  # direct: no broker to measure
        want(srv["usage_known"] is True, "server usage unknown")
        want(srv["pid"] > 0 and srv["cpu_s"] >= 0 and srv["rss_bytes"] > 0,
             "server pid/cpu/rss")
    want(srv["exit_code"] == 0, "server exit code %r" % srv["exit_code"])
    want(r["bench_cpu_s"] >= 0, "bench_cpu_s")
    if r["mode"] == "sift":
        c = srv["counters"]
        want(c.get("messages_in") == r["sent"], "broker messages_in")
        # A replay fills the stream first with no live subscriber.
        allowed = ("drops.no_subscribers",) \
            if r["workload"]["replay"] != "none" else ()
        want(all(v == 0 for k, v in c.items()
                 if k.startswith("drops.") and k not in allowed),
             "broker drops: %r" % c)
    w = r["workload"]
    if w["stream"]:
        st = r["stream"]
        want(st["known"] and st["fsync"] == w["stream"], "stream %r" % st)
        want(st["messages"] == r["sent"] == st["durable_seq"],
             "stream holds %r of %r" % (st["messages"], r["sent"]))
        want(r["disk"]["measured"] and r["disk"]["fsyncs_per_s"] > 0,
             "disk probe %r" % r["disk"])
    if w["confirm_window"] > 0:
        want(r["confirm_latency_us"]["count"] == r["sent"], "confirm latency")
    if w["ack"] == "explicit" and w["replay"] == "none":
        want(srv["counters"].get("deliveries.acks") == r["expected"],
             "broker acks %r" % srv["counters"].get("deliveries.acks"))
    if w["replay"] != "none":
        want(r["replay_fill_s"] > 0, "replay_fill_s")
elif r["kind"] == "memory":
    want(r["subscriptions"] > 0 and r["clients"] > 0, "memory sizes")
    want(r["rss_empty_bytes"] > 0, "rss_empty_bytes")
    want(r["rss_subs_bytes"] >= r["rss_empty_bytes"], "rss_subs_bytes")
    want("bytes_per_sub" in r and "bytes_per_sub_excl_clients" in r,
         "bytes_per_sub")
    want(r["server_exit_code"] == 0, "server exit code")
else:
    problems.append("unknown kind %r" % r.get("kind"))
if problems:
    print("FAIL %s: %s" % (label, "; ".join(problems)))
    print(text)
    sys.exit(1)
print("ok   %s" % label)
PY
  then
    failures=$((failures + 1))
  fi
}

# run LABEL ARGS...: runs sift-bench with --json and checks the report.
run() {
  local label="$1"
  shift
  local out rc=0
  out="$("$bench" --spawn "$siftd" --json --quiet --timeout 60 --drain 5 "$@")" || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "FAIL $label: sift-bench exited $rc"
    echo "$out"
    failures=$((failures + 1))
    return
  fi
  check "$label" "$out"
}

for mode in sift proxy; do
  run "$mode 1->1" --mode "$mode" --count 2000 --size 128
  run "$mode 2->2 fan-out, noise" --mode "$mode" --pubs 2 --subs 2 \
    --count 1000 --size 16 --noise 100 --noise_clients 3
  run "$mode queue group of 2" --mode "$mode" --subs 2 --queue workers \
    --count 2000
  run "$mode paced (latency)" --mode "$mode" --count 500 --rate 5000
  run "$mode wildcard pattern" --mode "$mode" --topic bench.a.b \
    --pattern 'bench.*.b' --count 1000
  run "$mode memory" --mode "$mode" --memory_subs 2000 --memory_clients 10
done
for mode in direct; do
  run "$mode 1->1" --mode "$mode" --count 2000 --size 128
  run "$mode 2->2 fan-out" --mode "$mode" --pubs 2 --subs 2 --count 1000 \
    --size 16
  run "$mode queue group of 2" --mode "$mode" --subs 2 --queue workers \
    --count 2000
done
run "sift Next() receive" --next --count 2000

# Delivery guarantees (issue 8): streams, confirms, acks, replay.
run "sift stream always, confirmed window 4" --stream always \
  --confirm_window 4 --count 300 --disk_probe 0.05
run "sift stream 10ms, fire-and-forget" --stream 10ms --count 2000 \
  --disk_probe 0.05
run "sift confirmed, no stream" --confirm_window 1 --count 300
# The window is refilled from the confirms' callbacks while the publisher
# thread still fills it: the two must not reorder new messages.
run "sift confirmed, window 5000" --confirm_window 5000 --count 20000
run "sift explicit acks, queue group of 2" --ack explicit --subs 2 \
  --queue workers --count 2000 --max_in_flight 50
run "sift explicit acks, Next()" --ack explicit --next --count 1000
run "sift stream replay sub" --stream never --replay sub --count 1000 \
  --disk_probe 0.05
run "sift stream replay fetch" --stream never --replay fetch \
  --fetch_batch 100 --count 1000 --disk_probe 0.05
run "sift stream replay fetch, acked" --stream never --replay fetch \
  --ack explicit --count 500 --disk_probe 0.05

# Bad flags are refused with exit status 2.
rc=0
"$bench" --size 3 >/dev/null 2>&1 || rc=$?
if [[ $rc -ne 2 ]]; then
  echo "FAIL --size 3: exit $rc, want 2"
  failures=$((failures + 1))
fi
# A flag missing its value does not take the next flag as it (--queue
# --ack would have named a queue group "--ack").
rc=0
err="$("$bench" --queue --ack explicit 2>&1 >/dev/null)" || rc=$?
if [[ $rc -ne 2 || "$err" != *"--queue needs a value (--ack after it is a flag"* ]]; then
  echo "FAIL --queue --ack: exit $rc, want 2 and the flag named: $err"
  failures=$((failures + 1))
fi
rc=0
"$bench" --mode proxy --stream always >/dev/null 2>&1 || rc=$?
if [[ $rc -ne 2 ]]; then
  echo "FAIL --mode proxy --stream: exit $rc, want 2"
  failures=$((failures + 1))
fi
# A fsync policy the broker would refuse is a bad flag, not a setup error.
for policy in sometimes 61000ms 0ms; do
  rc=0
  "$bench" --stream "$policy" >/dev/null 2>&1 || rc=$?
  if [[ $rc -ne 2 ]]; then
    echo "FAIL --stream $policy: exit $rc, want 2"
    failures=$((failures + 1))
  fi
done
# FSYNC is the broker's fsync setting, in milliseconds only: a duration
# in other units is refused (exit 2) with the spelling to use instead.
for policy in 5s ' 10ms' '10ms ' +10ms; do
  rc=0
  err="$("$bench" --stream "$policy" 2>&1 >/dev/null)" || rc=$?
  if [[ $rc -ne 2 ]]; then
    echo "FAIL --stream '$policy': exit $rc, want 2"
    failures=$((failures + 1))
  fi
done
# Numbers are taken as written: whitespace around one, or a '+' sign, is a
# bad flag (absl's parsers would take ' 100' and '+100' as 100).
for value in ' 100' '100 ' +100; do
  for flag in --count --size --drain; do
    rc=0
    "$bench" "$flag" "$value" >/dev/null 2>&1 || rc=$?
    if [[ $rc -ne 2 ]]; then
      echo "FAIL $flag '$value': exit $rc, want 2"
      failures=$((failures + 1))
    fi
  done
done
err="$("$bench" --stream 5s 2>&1 >/dev/null)" || true
if [[ "$err" != *"<N>ms"*"5s is 5000ms"* ]]; then
  echo "FAIL --stream 5s: the error does not say what to write: $err"
  failures=$((failures + 1))
fi
# --disk_probe probes the data directory of the siftd it spawns for a
# --stream: given without --stream (or --spawn) it is a bad flag (it was
# ignored silently); --disk_probe 0 is allowed anywhere.
rc=0
err="$("$bench" --spawn "$siftd" --count 200 --disk_probe 0.05 \
  2>&1 >/dev/null)" || rc=$?
if [[ $rc -ne 2 || "$err" != *"--disk_probe"*"--stream and --spawn"* ]]; then
  echo "FAIL --disk_probe without --stream: exit $rc, want 2; stderr: $err"
  failures=$((failures + 1))
fi
run "sift --disk_probe 0 without --stream" --count 200 --disk_probe 0
"$bench" --help | grep -q -- "--memory_subs" || {
  echo "FAIL --help lacks --memory_subs"
  failures=$((failures + 1))
}

if [[ $failures -ne 0 ]]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all sift-bench smoke checks passed"
