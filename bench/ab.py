#!/usr/bin/env python3
"""A/B: sift at two commits, same machine, same sitting, alternating.

    bench/ab.py --a-bench A/sift-bench --a-siftd A/siftd \\
                --b-bench B/sift-bench --b-siftd B/siftd [--reps 5] [--rows ...]

Each repetition runs every row once with A and once with B, A first in odd
repetitions and B first in even ones (so drift in the machine's load, and
the head start a run gets from the one before it, hit both alike; use an
even --reps), sift mode only. Prints, per row, the
medians of A and B and B/A: the figure to quote when a change must not cost
the no-plugin path more than a few percent. Rows and counts are those of the
standard matrix (bench/matrix.py), and ack1to1/ackqueue4 those of
delivery_bench.py's at-least-once rows, at 1/--scale.
"""

import argparse
import json
import statistics
import subprocess
import sys

ROWS = {
    "1to1_16": (["--size", "16"], "msgs_per_s"),
    "1to1_128": (["--size", "128"], "msgs_per_s"),
    "1to1_1024": (["--size", "1024"], "msgs_per_s"),
    "fanout4": (["--size", "128", "--subs", "4"], "per_sub_msgs_per_s_mean"),
    "4to1": (["--size", "128", "--pubs", "4"], "msgs_per_s"),
    "queue4": (["--size", "128", "--subs", "4", "--queue", "workers"],
               "msgs_per_s"),
    # At-least-once (delivery_bench.py's rows): every message ACKed.
    "ack1to1": (["--size", "128", "--ack", "explicit"], "msgs_per_s"),
    "ackqueue4": (["--size", "128", "--subs", "4", "--queue", "workers",
                   "--ack", "explicit"], "msgs_per_s"),
}


def run(bench, siftd, row, count):
    args, metric = ROWS[row]
    n = count // 4 if row == "4to1" else count
    cmd = [bench, "--spawn", siftd, "--mode", "sift", "--count", str(n),
           "--json", "--quiet", "--timeout", "300"] + args
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if p.returncode not in (0, 3):
        print("ab: %s failed: %s" % (" ".join(cmd), p.stderr[-300:]),
              file=sys.stderr)
        return None
    return json.loads(p.stdout)[metric]


def main():
    ap = argparse.ArgumentParser()
    for side in ("a", "b"):
        ap.add_argument("--%s-bench" % side, required=True)
        ap.add_argument("--%s-siftd" % side, required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--rows", default=",".join(ROWS))
    o = ap.parse_args()
    rows = o.rows.split(",")
    got = {(r, s): [] for r in rows for s in "ab"}
    for rep in range(o.reps):
        for r in rows:
            # A then B in odd repetitions, B then A in even ones: a run goes
            # faster on pages the run before it has just freed (at-least-once
            # rows hold a burst: up to a quarter faster here, BENCHMARKS.md,
            # Notes, fifteenth session), which a fixed order hands to B.
            for s in ("ab" if rep % 2 == 0 else "ba"):
                v = run(getattr(o, "%s_bench" % s), getattr(o, "%s_siftd" % s),
                        r, 1000000 // o.scale)
                if v is not None:
                    got[(r, s)].append(v)
                print("rep %d %s %s: %s" % (rep + 1, r, s.upper(), v),
                      file=sys.stderr)
    print("| row | A median | B median | B/A | A runs | B runs |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for r in rows:
        a, b = got[(r, "a")], got[(r, "b")]
        if not a or not b:
            print("| %s | n/a | n/a | n/a | | |" % r)
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        print("| %s | %.0f | %.0f | %.3f | %s | %s |" % (
            r, ma, mb, mb / ma, " ".join("%.0f" % x for x in a),
            " ".join("%.0f" % x for x in b)))


if __name__ == "__main__":
    main()
