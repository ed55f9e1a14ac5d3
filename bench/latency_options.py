#!/usr/bin/env python3
"""Latency options side by side (issue 11 item 4): the matrix's latency row
(20,000 x 128 B at 10,000 msgs/s) run for several variants, rotating, in one
sitting, so drift in the shared machine's load hits every variant alike.

    bench/latency_options.py --bench BIN/sift-bench --siftd BIN/siftd \\
        --reps 7 proxy sift 'spin100=sift:--siftd_flag=--idle_spin_us=100'

A variant is MODE or NAME=MODE[:ARG,ARG...] where MODE is a sift-bench mode
(sift, proxy, nats, redis, direct) and the ARGs are extra sift-bench
arguments. nats and redis take --nats/--redis for the server to spawn.
Prints, per variant, the median p50/p90/p99 over the repetitions, their
ratio to the proxy's medians, and CPU seconds (server, bench) per run.
NAME=MODE@VAR=V+VAR=V:ARGS also sets environment variables for that variant.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys


def parse_variant(text):
    """NAME=MODE[@VAR=V+VAR=V][:ARG,ARG...], or a bare MODE named after it."""
    name, sep, rest = text.partition("=")
    if not sep or ":" in name or "@" in name:
        name, rest = text.split(":")[0].split("@")[0], text
    mode_part, _, args = rest.partition(":")
    mode, _, env = mode_part.partition("@")
    extra = [a for a in args.split(",") if a]
    envs = dict(e.split("=", 1) for e in env.split("+") if e)
    return name, mode, extra, envs


def run(o, mode, extra, envs):
    cmd = [o.bench, "--mode", mode, "--size", "128", "--count", str(o.count),
           "--rate", str(o.rate), "--json", "--quiet", "--timeout", "300"]
    if mode == "sift":
        cmd += ["--spawn", o.siftd]
    elif mode == "nats":
        cmd += ["--spawn", o.nats]
    elif mode == "redis":
        cmd += ["--spawn", o.redis]
    cmd += extra
    env = dict(os.environ, **envs)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                       env=env)
    if p.returncode not in (0, 3):
        print("latency_options: %s failed: %s" % (" ".join(cmd),
                                                  p.stderr[-300:]),
              file=sys.stderr)
        return None
    d = json.loads(p.stdout)
    lat = d["latency_us"]
    return {"p50": lat["p50"], "p90": lat["p90"], "p99": lat["p99"],
            "server_cpu": d["server"].get("cpu_s", 0.0),
            "bench_cpu": d["bench_cpu_s"], "delivered": d["delivered"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", required=True)
    ap.add_argument("--siftd", required=True)
    ap.add_argument("--nats", default="/usr/sbin/nats-server")
    ap.add_argument("--redis", default="/usr/bin/redis-server")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--rate", type=int, default=10000)
    ap.add_argument("variants", nargs="+")
    o = ap.parse_args()
    variants = [parse_variant(v) for v in o.variants]
    got = {v[0]: [] for v in variants}
    for rep in range(o.reps):
        # Rotate the order, so no variant always runs first after a pause.
        k = rep % len(variants)
        for name, mode, extra, envs in variants[k:] + variants[:k]:
            r = run(o, mode, extra, envs)
            if r is not None:
                got[name].append(r)
                print("rep %d %-12s p50 %7.1f p90 %7.1f p99 %8.1f us  "
                      "cpu server %.2f bench %.2f" %
                      (rep, name, r["p50"], r["p90"], r["p99"],
                       r["server_cpu"], r["bench_cpu"]), file=sys.stderr)

    def med(name, key):
        vals = [r[key] for r in got[name]]
        return statistics.median(vals) if vals else float("nan")

    base = "proxy" if "proxy" in got else None
    print("| variant | runs | p50 µs | p90 µs | p99 µs | p50 / proxy | "
          "p99 / proxy | CPU s server | CPU s bench | delivered (worst) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
          "---: |")
    for name, _, _, _ in variants:
        if not got[name]:
            print("| %s | 0 | failed |" % name)
            continue
        ratio = lambda key: ("%.2f×" % (med(name, key) / med(base, key))
                             if base and got[base] else "—")
        print("| %s | %d | %.1f | %.1f | %.1f | %s | %s | %.2f | %.2f | "
              "%.4f |" % (name, len(got[name]), med(name, "p50"),
                          med(name, "p90"), med(name, "p99"), ratio("p50"),
                          ratio("p99"), med(name, "server_cpu"),
                          med(name, "bench_cpu"),
                          min(r["delivered"] for r in got[name])))


if __name__ == "__main__":
    main()
