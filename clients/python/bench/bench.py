#!/usr/bin/python3
"""Benchmarks of the Python client and the Django Channels layer (issue 9).

What it measures, each scenario in fresh processes, medians of --runs runs:

1. **Python publish / receive msgs/s** (blocking ``sift.Client``, and
   ``sift.AsyncClient``): one process publishes N (default 200,000)
   fire-and-forget messages of 128 B on one topic, then one confirmed
   publish (the broker handles a client's messages in order, so its answer
   means all N were routed); a subscriber in another process counts them.
   publish msgs/s = N / (first publish .. confirmed answer); receive msgs/s =
   received / (subscriber's first .. last message). Both run at once, so
   receive is at most the publish rate.
2. **group_send fan-out**: two receiver processes each make half of the
   group's channels (``new_channel()`` + ``group_add``) and ``receive()``
   on every one of them; a third process does M ``group_send`` calls, one
   after the other (each awaited). delivered/s = messages received, summed
   over channels / (first group_send .. last receive in either receiver).
   Every message carries its sequence number; each receiver counts, per
   channel, distinct messages (delivered), duplicates and misses. The same
   scenario runs against ``sift.channels.SiftChannelLayer`` on siftd and
   ``channels_redis.core.RedisChannelLayer`` on a local redis-server, in the
   same run. ``capacity`` is set to M, so no channel (sift: a channel's
   buffer; channels_redis: a process's key in Redis, and each channel's
   local buffer) can hold more than its capacity: any loss is not a
   ``capacity`` overflow.

It starts siftd (a copy of bazel-bin/broker/siftd, or --siftd) and
redis-server (``--save '' --appendonly no``) on free 127.0.0.1 ports in a
temporary directory, and stops every process it started by pid at the end,
also on errors. Every wait is bounded (--timeout). Run it with Debian's
interpreter (python3-zmq, python3-protobuf, python3-msgpack,
python3-django-channels, python3-channels-redis)::

    bazel build -c opt //broker:siftd
    /usr/bin/python3 clients/python/bench/bench.py            # all, 3 runs
    /usr/bin/python3 clients/python/bench/bench.py --only group --runs 1

Not part of the test suite. The roles (--role ...) are the child processes
it starts; they are not meant to be run by hand.
"""

import argparse
import asyncio
import json
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))
_PYROOT = os.path.dirname(_HERE)                       # clients/python
_REPO = os.path.abspath(os.path.join(_PYROOT, "..", ".."))
_PAYLOAD = b"x" * 128
_PAD = "p" * 100   # group_send message: type + seq + pad, ~128 B as msgpack


# ---------------------------------------------------------------- children

def _emit(obj: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _wait_go() -> None:
    line = sys.stdin.readline()   # the parent writes GO, or closes the pipe
    if line.strip() != "GO":
        raise SystemExit("no GO from the parent")


async def _await_go() -> None:
    await asyncio.get_running_loop().run_in_executor(None, _wait_go)


def role_sub_sync(a: argparse.Namespace) -> None:
    import sift
    client = sift.Client(a.endpoint, name="bench-sub",
                         queue_max_messages=a.count + 1000,
                         queue_max_bytes=0)
    try:
        sub = client.subscribe("bench.p")
        _emit({"ready": True})
        got = dropped_raised = 0
        first = last = 0.0
        deadline = time.monotonic() + a.timeout
        while got < a.count and time.monotonic() < deadline:
            try:
                sub.next(timeout=a.idle if got else a.timeout)
            except sift.Timeout:
                break
            except sift.MessagesDropped as exc:
                dropped_raised += exc.count
                continue
            got += 1
            last = time.monotonic()
            if got == 1:
                first = last
        _emit({"received": got, "first": first, "last": last,
               "dropped": sub.dropped + client.broker_dropped})
    finally:
        client.close()


def role_pub_sync(a: argparse.Namespace) -> None:
    import sift
    client = sift.Client(a.endpoint, name="bench-pub",
                         max_pending=a.count + 1000)
    try:
        _emit({"ready": True})
        _wait_go()
        publish = client.publish
        t0 = time.monotonic()
        for _ in range(a.count):
            publish("bench.p", _PAYLOAD)
        client.publish_confirmed("bench.end", b"", timeout=a.timeout)
        _emit({"t0": t0, "t1": time.monotonic()})
    finally:
        client.close()


async def _sub_async(a: argparse.Namespace) -> None:
    import sift
    client = await sift.AsyncClient.connect(
        a.endpoint, name="bench-asub", queue_max_messages=a.count + 1000,
        queue_max_bytes=0)
    try:
        sub = await client.subscribe("bench.p")
        _emit({"ready": True})
        got = 0
        first = last = 0.0
        deadline = time.monotonic() + a.timeout
        while got < a.count and time.monotonic() < deadline:
            try:
                await sub.next(timeout=a.idle if got else a.timeout)
            except sift.Timeout:
                break
            except sift.MessagesDropped:
                continue
            got += 1
            last = time.monotonic()
            if got == 1:
                first = last
        _emit({"received": got, "first": first, "last": last,
               "dropped": sub.dropped + client.broker_dropped})
    finally:
        await client.close()


async def _pub_async(a: argparse.Namespace) -> None:
    import sift
    client = await sift.AsyncClient.connect(a.endpoint, name="bench-apub",
                                            max_pending=a.count + 1000)
    try:
        _emit({"ready": True})
        await _await_go()
        publish = client.publish
        t0 = time.monotonic()
        for _ in range(a.count):
            await publish("bench.p", _PAYLOAD)
        await client.publish_confirmed("bench.end", b"", timeout=a.timeout)
        _emit({"t0": t0, "t1": time.monotonic()})
    finally:
        await client.close()


def _make_layer(a: argparse.Namespace):
    if a.backend == "sift":
        from sift.channels import SiftChannelLayer
        return SiftChannelLayer(endpoint=a.endpoint, prefix=a.prefix,
                                capacity=a.capacity, expiry=a.expiry,
                                send_timeout=10.0)
    from channels_redis.core import RedisChannelLayer
    return RedisChannelLayer(hosts=[a.redis], prefix=a.prefix,
                             capacity=a.capacity, expiry=a.expiry)


async def _close_layer(layer, backend: str) -> None:
    if backend == "sift":
        await layer.close()
    else:
        await layer.close_pools()


async def _group_recv(a: argparse.Namespace) -> None:
    layer = _make_layer(a)
    m = a.count
    try:
        channels = [await layer.new_channel() for _ in range(a.channels)]
        for ch in channels:
            await layer.group_add(a.group, ch)
        seen = [bytearray(m) for _ in channels]
        unique = [0] * len(channels)
        state = {"dups": 0, "bad": 0, "last": 0.0, "total": 0}

        async def drain(i: int, ch: str) -> None:
            mask = seen[i]
            while unique[i] < m:
                msg = await layer.receive(ch)
                state["last"] = time.monotonic()
                state["total"] += 1
                seq = msg.get("seq", -1)
                if not 0 <= seq < m:
                    state["bad"] += 1
                elif mask[seq]:
                    state["dups"] += 1
                else:
                    mask[seq] = 1
                    unique[i] += 1

        tasks = [asyncio.ensure_future(drain(i, ch))
                 for i, ch in enumerate(channels)]
        await asyncio.sleep(0.2)   # every receive() is waiting
        _emit({"ready": True})
        deadline = time.monotonic() + a.timeout
        seen_total, progress_at = 0, time.monotonic()
        while time.monotonic() < deadline:
            if all(t.done() for t in tasks):
                break
            await asyncio.sleep(0.02)
            if state["total"] != seen_total:
                seen_total, progress_at = state["total"], time.monotonic()
            elif seen_total and time.monotonic() - progress_at > a.idle:
                break
        for t in tasks:
            t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        errors = [repr(r) for r in results
                  if isinstance(r, BaseException)
                  and not isinstance(r, asyncio.CancelledError)]
        _emit({"delivered": sum(unique), "expected": m * len(channels),
               "dups": state["dups"], "bad": state["bad"],
               "short_channels": sum(1 for u in unique if u < m),
               "last": state["last"], "errors": errors[:3]})
    finally:
        await _close_layer(layer, a.backend)


async def _group_send(a: argparse.Namespace) -> None:
    layer = _make_layer(a)
    try:
        # Connect (and warm up) before the clock starts: a send to a
        # group nobody is in.
        await layer.group_send(a.group + "-warm", {"type": "bench.warm"})
        _emit({"ready": True})
        await _await_go()
        errors: List[str] = []
        t0 = time.monotonic()
        for seq in range(a.count):
            try:
                await layer.group_send(a.group, {"type": "bench.msg",
                                                 "seq": seq, "pad": _PAD})
            except Exception as exc:  # noqa: BLE001  (counted, reported)
                errors.append(repr(exc))
        _emit({"t0": t0, "t1": time.monotonic(), "errors": len(errors),
               "first_error": errors[0] if errors else None})
    finally:
        await _close_layer(layer, a.backend)


ROLES = {
    "sub-sync": role_sub_sync,
    "pub-sync": role_pub_sync,
    "sub-async": lambda a: asyncio.run(_sub_async(a)),
    "pub-async": lambda a: asyncio.run(_pub_async(a)),
    "group-recv": lambda a: asyncio.run(_group_recv(a)),
    "group-send": lambda a: asyncio.run(_group_send(a)),
}


def run_role(a: argparse.Namespace) -> None:
    sys.path.insert(0, _PYROOT)
    fn = ROLES[a.role]
    if not a.profile:
        fn(a)
        return
    import cProfile
    prof = cProfile.Profile()
    prof.enable()
    try:
        fn(a)
    finally:
        prof.disable()
        prof.dump_stats(os.path.join(
            a.profile, f"{a.role}-{a.backend}-{os.getpid()}.prof"))


# ------------------------------------------------------------------ parent

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Child:
    """A child process speaking JSON lines on stdout; stopped by pid."""

    def __init__(self, argv: List[str], log_path: str,
                 env: Optional[Dict[str, str]] = None,
                 pipes: bool = True) -> None:
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.PIPE if pipes else
            subprocess.DEVNULL,
            stdout=subprocess.PIPE if pipes else self.log, stderr=self.log)
        self.lines: "queue.Queue[str]" = queue.Queue()
        if pipes:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.decode("utf-8", "replace"))
        self.lines.put("")

    def get(self, timeout: float) -> Dict[str, Any]:
        """The next JSON line; RuntimeError if none within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"pid {self.proc.pid}: no answer within "
                                   f"{timeout} s")
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if not line:
                raise RuntimeError(f"pid {self.proc.pid} exited "
                                   f"({self.proc.wait(5)}); see {self.log.name}")
            if line.startswith("{"):
                return json.loads(line)

    def go(self) -> None:
        self.proc.stdin.write(b"GO\n")
        self.proc.stdin.flush()

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self.log.close()


def wait_port(port: int, child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{child.proc.args[0]} exited: see "
                               f"{child.log.name}")
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} not open within {timeout} s")


class Bench:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.tmp = tempfile.mkdtemp(prefix="sift-pybench.")
        self.children: List[Child] = []
        self.env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1",
                        SIFT_PROTO_PATH=self.tmp)
        self.endpoint = ""
        self.redis = ""
        self.seq = 0

    def child(self, argv: List[str], name: str, pipes: bool = True) -> Child:
        c = Child(argv, os.path.join(self.tmp, name + ".log"), self.env,
                  pipes)
        self.children.append(c)
        return c

    def role(self, role: str, name: str, *extra: str) -> Child:
        argv = [sys.executable, os.path.abspath(__file__), "--role", role,
                "--endpoint", self.endpoint, "--timeout",
                str(self.a.timeout), "--idle", str(self.a.idle)] + list(extra)
        if self.a.profile:
            argv += ["--profile", self.a.profile]
        return self.child(argv, name)

    def stop(self, c: Child) -> None:
        c.stop()
        self.children.remove(c)

    def start_servers(self) -> None:
        subprocess.run(["protoc", f"--proto_path={_REPO}/proto",
                        f"--python_out={self.tmp}",
                        f"{_REPO}/proto/sift.proto"], check=True, timeout=60)
        if "sift" in self.a.backends:
            siftd = os.path.join(self.tmp, "siftd")
            shutil.copy2(self.a.siftd, siftd)
            port = free_port()
            self.endpoint = f"tcp://127.0.0.1:{port}"
            c = self.child([siftd, f"--endpoints={self.endpoint}",
                            "--log_level=warn"], "siftd", pipes=False)
            wait_port(port, c, 10)
        if "redis" in self.a.backends and "group" in self.a.only:
            port = free_port()
            self.redis = f"redis://127.0.0.1:{port}"
            c = self.child([self.a.redis_server, "--port", str(port),
                            "--bind", "127.0.0.1", "--save", "",
                            "--appendonly", "no", "--daemonize", "no",
                            "--dir", self.tmp], "redis", pipes=False)
            wait_port(port, c, 10)

    def stop_all(self) -> None:
        for c in reversed(self.children):
            try:
                c.stop()
            except Exception as exc:  # noqa: BLE001  (stop the others)
                print(f"stopping pid {c.proc.pid}: {exc!r}", file=sys.stderr)
        self.children.clear()

    # -- scenarios --

    def pubsub(self, kind: str) -> Dict[str, Any]:
        n = str(self.a.count)
        sub = self.role(f"sub-{kind}", f"sub-{kind}", "--count", n)
        pub = self.role(f"pub-{kind}", f"pub-{kind}", "--count", n)
        try:
            sub.get(30)
            pub.get(30)
            pub.go()
            p = pub.get(self.a.timeout + 30)
            s = sub.get(self.a.timeout + 30)
        finally:
            self.stop(pub)
            self.stop(sub)
        span = max(s["last"] - s["first"], 1e-9)
        return {"publish": self.a.count / (p["t1"] - p["t0"]),
                "receive": s["received"] / span,
                "delivered": s["received"], "expected": self.a.count,
                "dropped": s["dropped"]}

    def group(self, backend: str, size: int, m: int) -> Dict[str, Any]:
        self.seq += 1
        common = ["--backend", backend, "--redis", self.redis,
                  "--prefix", f"b{self.seq}{backend}",
                  "--group", f"g{size}", "--count", str(m),
                  "--capacity", str(self.a.layer_capacity or m),
                  "--expiry", str(self.a.expiry)]
        half = str(size // 2)
        recvs = [self.role("group-recv", f"recv-{backend}-{size}-{i}",
                           *common, "--channels", half) for i in range(2)]
        sender = None
        try:
            for r in recvs:
                r.get(60)
            sender = self.role("group-send", f"send-{backend}-{size}",
                               *common)
            sender.get(30)
            sender.go()
            s = sender.get(self.a.timeout + 30)
            rs = [r.get(self.a.timeout + 30) for r in recvs]
        finally:
            if sender is not None:
                self.stop(sender)
            for r in recvs:
                self.stop(r)
        delivered = sum(r["delivered"] for r in rs)
        last = max(r["last"] for r in rs)
        out = {"rate": delivered / max(last - s["t0"], 1e-9),
               "delivered": delivered,
               "expected": sum(r["expected"] for r in rs),
               "dups": sum(r["dups"] for r in rs),
               "bad": sum(r["bad"] for r in rs),
               "short_channels": sum(r["short_channels"] for r in rs),
               "send_errors": s["errors"],
               "send_s": s["t1"] - s["t0"],
               "errors": [e for r in rs for e in r["errors"]]
               + ([s["first_error"]] if s["first_error"] else [])}
        return out


def machine_line() -> str:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", _REPO] + list(args),
                                  capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"
    dirty = " (uncommitted changes in clients/python/sift)" if git(
        "status", "--porcelain", "--", "clients/python/sift") else ""
    return (f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}),"
            f" {time.strftime('%Y-%m-%d %H:%M %Z')}, commit "
            f"{git('rev-parse', '--short', 'HEAD')}{dirty}, "
            f"Python {sys.version.split()[0]}, load average "
            f"{os.getloadavg()[0]:.2f} (1 min, at the end)")


def fmt(x: Optional[float]) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def med(values: List[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def parent(a: argparse.Namespace) -> int:
    b = Bench(a)
    runs: List[Dict[str, Any]] = []
    sizes = [(100, a.m100), (1000, a.m1000)]
    try:
        b.start_servers()
        for run in range(a.runs):
            r: Dict[str, Any] = {}
            if "pubsub" in a.only:
                for kind in a.clients:
                    r[f"pubsub-{kind}"] = x = b.pubsub(kind)
                    print(f"run {run + 1} {kind} client: publish "
                          f"{x['publish']:,.0f}/s receive "
                          f"{x['receive']:,.0f}/s delivered "
                          f"{x['delivered']}/{x['expected']} "
                          f"dropped {x['dropped']}", flush=True)
            if "group" in a.only:
                for size, m in sizes:
                    for backend in a.backends:
                        r[f"group-{size}-{backend}"] = x = b.group(
                            backend, size, m)
                        print(f"run {run + 1} group_send {size} channels x "
                              f"{m} {backend}: {x['rate']:,.0f} delivered/s"
                              f" {x['delivered']}/{x['expected']} dups "
                              f"{x['dups']} short channels "
                              f"{x['short_channels']} send "
                              f"{x['send_s']:.2f} s errors "
                              f"{x['send_errors']} {x['errors']}",
                              flush=True)
            runs.append(r)
    finally:
        b.stop_all()
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"machine": machine_line(), "runs": runs}, f, indent=1)
    print_table(a, runs, sizes)
    if not a.keep:
        shutil.rmtree(b.tmp, ignore_errors=True)
    else:
        print(f"logs in {b.tmp}")
    return 0


def print_table(a: argparse.Namespace, runs: List[Dict[str, Any]],
                sizes) -> None:
    print()
    print(machine_line())
    print()
    print("| measure | sift | channels_redis | ratio | delivered/expected |")
    print("| --- | ---: | ---: | ---: | ---: |")

    def total(key: str) -> str:
        d = sum(r[key]["delivered"] for r in runs if key in r)
        e = sum(r[key]["expected"] for r in runs if key in r)
        return f"{d:,}/{e:,}"

    if "pubsub" in a.only:
        for kind in a.clients:
            key = f"pubsub-{kind}"
            label = "Client" if kind == "sync" else "AsyncClient"
            for what in ("publish", "receive"):
                v = med([r[key][what] for r in runs])
                print(f"| Python {what} msgs/s ({label}, 128 B) | {fmt(v)} "
                      f"| n/a | n/a | {total(key) if what == 'receive' else '—'}"
                      " |")
    if "group" in a.only:
        for size, m in sizes:
            ks, kr = f"group-{size}-sift", f"group-{size}-redis"
            vs = med([r[ks]["rate"] for r in runs if ks in r])
            vr = med([r[kr]["rate"] for r in runs if kr in r])
            ratio = med([r[ks]["rate"] / r[kr]["rate"] for r in runs
                         if ks in r and kr in r and r[kr]["rate"] > 0])
            dv = "; ".join(f"{name} {total(k)}" for name, k in
                            (("sift", ks), ("channels_redis", kr))
                            if any(k in r for r in runs))
            print(f"| group_send {size:,} channels (x {m}, delivered/s) | "
                  f"{fmt(vs)} | {fmt(vr)} | "
                  f"{'n/a' if ratio is None else f'{ratio:.2f}x'} | {dv} |")


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Measures: Python publish/receive msgs/s (Client, "
        "AsyncClient) and channel-layer group_send fan-out to 100 and 1,000 "
        "channels in two processes, sift vs channels_redis. See the module "
        "docstring for the definitions.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--runs", type=int, default=3, help="repetitions")
    p.add_argument("--only", nargs="+", choices=["pubsub", "group"],
                   default=["pubsub", "group"], help="scenarios")
    p.add_argument("--clients", nargs="+", choices=["sync", "async"],
                   default=["sync", "async"],
                   help="publish/receive: which clients")
    p.add_argument("--backends", nargs="+", choices=["sift", "redis"],
                   default=["sift", "redis"], help="group_send: layers")
    p.add_argument("--count", type=int, default=200000,
                   help="publish/receive: messages")
    p.add_argument("--m100", type=int, default=1000,
                   help="group_send calls to the 100-channel group "
                   "(and its capacity)")
    p.add_argument("--m1000", type=int, default=200,
                   help="group_send calls to the 1,000-channel group "
                   "(and its capacity)")
    p.add_argument("--layer-capacity", type=int, default=0,
                   help="channel layers' capacity (0: the group_send count, "
                   "so it cannot be exceeded)")
    p.add_argument("--expiry", type=int, default=300,
                   help="channel layers' message expiry, s")
    p.add_argument("--timeout", type=float, default=120,
                   help="bound of each scenario's sending and receiving, s")
    p.add_argument("--idle", type=float, default=5,
                   help="a receiver stops after this many s without a "
                   "message (once one came)")
    p.add_argument("--siftd", default=os.path.join(_REPO, "bazel-bin",
                                                   "broker", "siftd"),
                   help="siftd binary (copied to a temp dir first)")
    p.add_argument("--redis-server", default="/usr/bin/redis-server")
    p.add_argument("--json", help="write every run's figures here")
    p.add_argument("--profile", metavar="DIR",
                   help="run the children under cProfile, stats to DIR")
    p.add_argument("--keep", action="store_true",
                   help="keep the temp dir (logs)")
    # Child roles (internal).
    p.add_argument("--role", choices=sorted(ROLES), help=argparse.SUPPRESS)
    p.add_argument("--endpoint", help=argparse.SUPPRESS)
    p.add_argument("--redis", help=argparse.SUPPRESS)
    p.add_argument("--backend", default="", help=argparse.SUPPRESS)
    p.add_argument("--prefix", help=argparse.SUPPRESS)
    p.add_argument("--group", help=argparse.SUPPRESS)
    p.add_argument("--channels", type=int, help=argparse.SUPPRESS)
    p.add_argument("--capacity", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.role:
        run_role(a)
        return 0
    if a.profile:
        a.profile = os.path.abspath(a.profile)
        os.makedirs(a.profile, exist_ok=True)
    if not os.path.exists(a.siftd):
        p.error(f"no siftd at {a.siftd}: bazel build -c opt //broker:siftd")
    return parent(a)


if __name__ == "__main__":
    sys.exit(main())
