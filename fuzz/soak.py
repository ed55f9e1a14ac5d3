#!/usr/bin/python3
"""Soak test of a real siftd under hostile input (run by tools/soak.sh).

Starts siftd on a free loopback port with a short client timeout, then for
--seconds runs, side by side:

  * a healthy publisher (confirmed PUBs, a sequence number in each payload,
    paced at --rate) and a healthy subscriber (accepts batches) that counts
    what it receives: lost, duplicated, out of order;
  * --attackers processes, each holding --connections DEALER connections
    that send mutated valid frames (bit flips, truncations, merged headers,
    long varints), wrong frame counts, BATCH bodies with bad lengths, huge
    strings, random garbage and commands without HELLO, and that reconnect
    (sometimes with random or reused routing ids) and vanish without BYE.

Then it stops the attackers, lets the healthy stream drain, waits until
siftd has expired the idle sessions (STATS says one client: the one
asking), and reports siftd's RSS before and after, its counters, and
whether it is still alive. Exit status 1 if the healthy stream lost or
duplicated anything, siftd died, or its RSS grew by more than --rss-limit-mb;
2 if the soak could not run.

Needs Debian's python3-zmq and python3-protobuf, and protoc: the protobuf
module is generated from proto/sift.proto into a temporary directory at
start (nothing generated is kept). Every process it starts is stopped by
pid before it exits; every loop is bounded in time and in count.
"""

import argparse
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import zmq

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEALTHY_TOPIC = "soak.healthy"
PING_INTERVAL_S = 0.5
DRAIN_S = 10.0            # after the attack: time for the healthy stream to settle
MAX_LOOP = 10 ** 9        # iteration bound for every loop that is also timed
pb = None                 # sift_pb2, loaded by main() before any fork


# ---------------------------------------------------------------------------
# Wire helpers.

def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def read_varint(buf, pos):
    result = 0
    for shift in range(0, 70, 7):
        if pos >= len(buf):
            break
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
    raise ValueError("bad varint")


def set_field(msg, name, value):
    """Sets a string-or-bytes field whichever the .proto declares."""
    fd = msg.DESCRIPTOR.fields_by_name[name]
    if fd.type == fd.TYPE_BYTES and isinstance(value, str):
        value = value.encode()
    elif fd.type == fd.TYPE_STRING and isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    setattr(msg, name, value)


def text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def header(request_id, command, **fields):
    h = pb.Header()
    if request_id:
        h.request_id = request_id
    m = getattr(h, command)
    m.SetInParent()
    for k, v in fields.items():
        if isinstance(v, (str, bytes)):
            set_field(m, k, v)
        else:
            setattr(m, k, v)
    return h.SerializeToString()


def batch_entries(body):
    """Yields (header_bytes, payload) of a BATCH body; raises ValueError."""
    pos = 0
    for _ in range(len(body) + 1):
        if pos >= len(body):
            return
        n, pos = read_varint(body, pos)
        if n > len(body) - pos:
            raise ValueError("entry header past the end")
        h = body[pos:pos + n]
        pos += n
        n, pos = read_varint(body, pos)
        if n > len(body) - pos:
            raise ValueError("entry payload past the end")
        yield h, body[pos:pos + n]
        pos += n


def new_dealer(ctx, endpoint, routing_id=None):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.SNDHWM, 1000)
    s.setsockopt(zmq.RCVHWM, 10000)
    if routing_id:
        s.setsockopt(zmq.ROUTING_ID, routing_id)
    s.connect(endpoint)
    return s


def hello(sock, request_id, name, batches, timeout_s):
    """HELLO and wait for WELCOME; returns the Welcome or None."""
    sock.send(header(request_id, "hello", protocol_version=1,
                     client_name=name, accepts_batches=batches))
    deadline = time.monotonic() + timeout_s
    for _ in range(100000):
        left = deadline - time.monotonic()
        if left <= 0 or not sock.poll(int(left * 1000) + 1):
            return None
        frames = sock.recv_multipart()
        h = pb.Header()
        h.ParseFromString(frames[0])
        if h.request_id == request_id and h.HasField("welcome"):
            return h.welcome
        if h.request_id == request_id and h.HasField("error"):
            return None
    return None


# ---------------------------------------------------------------------------
# The healthy publisher and subscriber (one process, one poll loop).

class Healthy:
    PING_BASE = 1 << 40      # request ids of PINGs and control requests
    SID = 1

    def __init__(self, endpoint, seconds, rate, window, token):
        self.endpoint, self.seconds = endpoint, seconds
        self.rate, self.window, self.token = rate, window, token
        self.r = dict(published=0, confirmed=0, publish_errors=0,
                      error_codes={}, unconfirmed=0, received=0, lost=0,
                      duplicated=0, out_of_order=0, foreign=0,
                      sessions_lost=0, ready=False, note="")
        self.seen = bytearray()        # seen[seq]: times delivered
        self.confirmed = bytearray()   # confirmed[seq]: 1 if OK
        self.outstanding = set()
        self.undelivered = 0           # confirmed, not yet delivered
        self.last_seq = 0
        self.next_rid = self.PING_BASE

    def rid(self):
        self.next_rid += 1
        return self.next_rid

    def start_sessions(self):
        if (hello(self.pub, self.rid(), "soak-healthy-pub", False, 10) is None or
                hello(self.sub, self.rid(), "soak-healthy-sub", True, 10) is None):
            return False
        rid = self.rid()
        self.sub.send(header(rid, "sub", sid=self.SID, pattern=HEALTHY_TOPIC))
        deadline = time.monotonic() + 10
        for _ in range(100000):
            left = deadline - time.monotonic()
            if left <= 0 or not self.sub.poll(int(left * 1000) + 1):
                return False
            h = pb.Header()
            h.ParseFromString(self.sub.recv_multipart()[0])
            if h.request_id == rid:
                return h.HasField("ok")
        return False

    def payload(self, seq):
        return b"%s %d " % (self.token, seq) + b"." * 48

    def on_delivery(self, topic, payload):
        parts = payload.split(b" ", 2)
        if text(topic) != HEALTHY_TOPIC or len(parts) < 3 or parts[0] != self.token:
            self.r["foreign"] += 1
            return
        try:
            seq = int(parts[1])
        except ValueError:
            self.r["foreign"] += 1
            return
        if seq <= 0 or seq >= len(self.seen):
            self.r["foreign"] += 1
            return
        if self.seen[seq]:
            self.r["duplicated"] += 1
        else:
            self.r["received"] += 1
            if self.confirmed[seq]:
                self.undelivered -= 1
        self.seen[seq] = min(255, self.seen[seq] + 1)
        if seq < self.last_seq:
            self.r["out_of_order"] += 1
        self.last_seq = max(self.last_seq, seq)

    def on_pub_socket(self, frames):
        h = pb.Header()
        h.ParseFromString(frames[0])
        rid = h.request_id
        if h.HasField("error") and h.error.code == pb.HELLO_REQUIRED:
            self.r["sessions_lost"] += 1
            self.resume(self.pub, "soak-healthy-pub", False)
        if rid in self.outstanding:
            self.outstanding.discard(rid)
            if h.HasField("ok"):
                self.r["confirmed"] += 1
                self.confirmed[rid] = 1
                if not self.seen[rid]:
                    self.undelivered += 1
            else:
                self.r["publish_errors"] += 1
                code = pb.ErrorCode.Name(h.error.code) if h.HasField("error") else "?"
                self.r["error_codes"][code] = self.r["error_codes"].get(code, 0) + 1

    def on_sub_socket(self, frames):
        h = pb.Header()
        h.ParseFromString(frames[0])
        if h.HasField("deliver") and len(frames) == 2:
            self.on_delivery(h.deliver.topic, frames[1])
        elif h.HasField("batch") and len(frames) == 2:
            try:
                for eh, payload in batch_entries(frames[1]):
                    e = pb.Header()
                    e.ParseFromString(eh)
                    if e.HasField("deliver"):
                        self.on_delivery(e.deliver.topic, payload)
                    else:
                        self.r["foreign"] += 1
            except ValueError:
                self.r["note"] += "malformed BATCH from siftd; "
        elif h.HasField("error") and h.error.code == pb.HELLO_REQUIRED:
            self.r["sessions_lost"] += 1
            self.resume(self.sub, "soak-healthy-sub", True)
            self.sub.send(header(self.rid(), "sub", sid=self.SID,
                                 pattern=HEALTHY_TOPIC))

    def resume(self, sock, name, batches):
        # The session is gone: HELLO again; replies in between are dropped
        # (the loss they stand for is counted at the end).
        sock.send(header(self.rid(), "hello", protocol_version=1,
                         client_name=name, accepts_batches=batches))

    def run(self, stop, report):
        ctx = zmq.Context()
        self.pub = new_dealer(ctx, self.endpoint)
        self.sub = new_dealer(ctx, self.endpoint)
        try:
            if not self.start_sessions():
                self.r["note"] += "could not start the healthy sessions; "
                return
            self.r["ready"] = True
            report.send({"phase": "ready"})
            self.loop(stop)
            for s in (self.pub, self.sub):
                s.send(header(0, "bye"))
        finally:
            # A moment of linger so the BYEs leave.
            self.pub.close(500)
            self.sub.close(500)
            ctx.term()
            self.r["unconfirmed"] = len(self.outstanding)
            self.r["lost"] = sum(1 for seq in range(1, len(self.confirmed))
                                 if self.confirmed[seq] and not self.seen[seq])
            report.send(self.r)

    def loop(self, stop):
        poller = zmq.Poller()
        poller.register(self.pub, zmq.POLLIN)
        poller.register(self.sub, zmq.POLLIN)
        start = time.monotonic()
        publish_until = start + self.seconds
        hard_stop = publish_until + DRAIN_S
        interval = 1.0 / self.rate
        next_send = start
        next_ping = start
        seq = 0
        for _ in range(MAX_LOOP):
            now = time.monotonic()
            publishing = now < publish_until and not stop.is_set()
            # After publishing: done when no confirm is pending and every
            # confirmed message arrived, or at the hard stop.
            if not publishing and (now >= hard_stop or (
                    not self.outstanding and self.undelivered == 0)):
                break
            if now >= next_ping:
                for s in (self.pub, self.sub):
                    try:
                        s.send(header(self.rid(), "ping"), zmq.NOBLOCK)
                    except zmq.Again:
                        pass
                next_ping = now + PING_INTERVAL_S
            while publishing and now >= next_send and len(self.outstanding) < self.window:
                seq += 1
                if seq == 1:  # index 0 unused
                    self.seen.append(0)
                    self.confirmed.append(0)
                self.seen.append(0)
                self.confirmed.append(0)
                self.pub.send_multipart(
                    [header(seq, "pub", topic=HEALTHY_TOPIC, confirm=True),
                     self.payload(seq)])
                self.outstanding.add(seq)
                self.r["published"] += 1
                next_send += interval
                if now - next_send > 1.0:  # do not burst after a stall
                    next_send = now
            timeout_ms = max(1, int(min(next_send - now if publishing else 0.05,
                                        next_ping - now, 0.05) * 1000))
            for sock, _ in poller.poll(timeout_ms):
                for _ in range(1000):
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if sock is self.pub:
                        self.on_pub_socket(frames)
                    else:
                        self.on_sub_socket(frames)


def healthy_main(endpoint, seconds, rate, window, token, stop, report):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    Healthy(endpoint, seconds, rate, window, token).run(stop, report)


# ---------------------------------------------------------------------------
# Attackers.

PATTERNS = ["attack.>", "attack.*.x", ">", "*", "*.*", "soak.>", "_INBOX.>",
            "a.b.c", "x.*.>", "attack.a", "_INBOX.c1.>", "a..b", ".", "*.>.x",
            "attack.\x00", "z" * 300]
TOPICS = ["attack.a", "attack.b.x", "attack.c.d.e", "a", "_INBOX.c1.1",
          "a.*", "bad topic", "x" * 257, ".", "", "attack.\xff"]


class Attacker:
    KINDS = [("valid", 20), ("mutated", 35), ("frame_count", 8),
             ("bad_batch", 12), ("garbage", 12), ("no_hello", 4),
             ("reconnect", 3), ("bye", 1), ("huge", 0.15)]

    def __init__(self, idx, endpoint, connections, reconnects_per_s, seed):
        self.idx, self.endpoint = idx, endpoint
        # Each reconnect leaves a TCP port in TIME_WAIT: bound their rate so
        # a long soak does not run out of ephemeral ports.
        self.reconnect_gap_s = 1.0 / reconnects_per_s
        self.last_reconnect = 0.0
        self.rng = random.Random(seed)
        self.nconn = connections
        self.past_ids = []
        self.c = dict(messages=0, frames=0, bytes=0, blocked=0, received=0,
                      reconnects=0, by_kind={})
        kinds, weights = zip(*self.KINDS)
        self.kinds, self.cum = kinds, []
        total = 0
        for w in weights:
            total += w
            self.cum.append(total)
        self.templates = self.make_templates()

    # -- frames ------------------------------------------------------------
    def rand_bytes(self, n):
        return bytes(self.rng.getrandbits(8) for _ in range(n))

    def make_templates(self):
        t = []
        t.append([header(1, "hello", protocol_version=1, client_name="atk")])
        t.append([header(2, "hello", protocol_version=1, accepts_batches=True)])
        t.append([header(0, "pub", topic="attack.a"), b"payload"])
        t.append([header(3, "pub", topic="attack.b.x", confirm=True), b""])
        t.append([header(4, "pub", topic="attack.c", reply_to="_INBOX.c1.9"), b"x" * 40])
        t.append([header(5, "sub", sid=7, pattern="attack.>")])
        t.append([header(6, "sub", sid=8, pattern="attack.*.x", queue_group="g1")])
        t.append([header(7, "unsub", sid=7)])
        t.append([header(8, "ping")])
        t.append([header(9, "pong")])
        t.append([header(10, "stats")])
        t.append([header(0, "bye")])
        t.append([header(0, "deliver", sid=1, topic="attack.a"), b"p"])
        t.append([header(11, "welcome", protocol_version=1, client_id="c1")])
        t.append([header(12, "ok")])
        t.append([header(13, "error", code=1, message="x")])
        t.append([header(14, "hello", protocol_version=2)])
        t.append([header(15, "batch", count=3), self.pub_batch(3)])
        t.append([header(0, "batch", count=2),
                  b"".join(varint(len(h)) + h + varint(1) + b"d" for h in
                           [header(0, "deliver", sid=1, topic="a"),
                            header(0, "deliver", sid=2, topic="b")])])
        t.append([b"\xa2\x01\x00"])            # field 20: a command from the future
        t.append([header(16, "sub", sid=0, pattern="a")])
        return t

    def pub_batch(self, n, topic="attack.batch"):
        body = b""
        for i in range(n):
            h = header(self.rng.choice([0, 0, 100 + i]), "pub", topic=topic,
                       confirm=self.rng.random() < 0.2)
            body += varint(len(h)) + h + varint(5) + b"entry"
        return body

    def mutate(self, b):
        b = bytearray(b)
        for _ in range(self.rng.randint(1, 4)):
            op = self.rng.randrange(9)
            n = len(b)
            if op == 0 and n:
                i = self.rng.randrange(n)
                b[i] ^= 1 << self.rng.randrange(8)
            elif op == 1 and n:
                del b[self.rng.randrange(n):]
            elif op == 2:
                i = self.rng.randint(0, n)
                b[i:i] = self.rand_bytes(self.rng.randint(1, 8))
            elif op == 3 and n:
                b[self.rng.randrange(n)] = self.rng.choice([0, 0x7F, 0x80, 0xFF, 0x01])
            elif op == 4 and n:
                i = self.rng.randrange(n)
                del b[i:i + self.rng.randint(1, 4)]
            elif op == 5:
                b += self.rng.choice(self.templates)[0]      # a merged header
            elif op == 6:
                i = self.rng.randint(0, n)
                b[i:i] = self.rng.choice([b"\xff" * 10, b"\x80" * 5 + b"\x00",
                                          b"\xff\xff\xff\xff\x0f"])
            elif op == 7 and n:
                i = self.rng.randrange(n)
                b[i] = self.rng.getrandbits(8)
            elif op == 8 and n:
                i = self.rng.randrange(n)
                b[i:i] = b[i:i + self.rng.randint(1, 16)]
        return bytes(b)

    def valid(self):
        r = self.rng.random()
        rid = self.rng.randint(0, 1 << 20)
        if r < 0.35:
            return [header(rid, "pub", topic=self.rng.choice(TOPICS[:5]),
                           confirm=self.rng.random() < 0.3),
                    self.rand_bytes(self.rng.randint(0, 64))]
        if r < 0.6:
            return [header(rid, "sub", sid=self.rng.randint(1, 5000),
                           pattern=self.rng.choice(PATTERNS),
                           queue_group=self.rng.choice(["", "", "q", "q:1"]))]
        if r < 0.7:
            return [header(rid, "unsub", sid=self.rng.randint(1, 5000))]
        if r < 0.8:
            return [header(rid, "stats")]
        if r < 0.9:
            n = self.rng.randint(1, 20)
            return [header(rid, "batch", count=n), self.pub_batch(n)]
        return [header(rid, "ping")]

    def frame_count(self):
        f = list(self.rng.choice(self.templates))
        r = self.rng.random()
        if r < 0.3:
            return f[:1] if len(f) == 2 else f + [b"unexpected"]
        if r < 0.5:
            return [b""] + f[1:]
        if r < 0.7:
            return f + [b"x"] * self.rng.randint(1, 4)
        return [f[0], b"", b""]

    def bad_batch(self):
        n = self.rng.randint(1, 30)
        body = bytearray(self.pub_batch(n))
        r = self.rng.random()
        if r < 0.15:
            body += varint(1 << self.rng.randint(8, 62))    # length past the end
        elif r < 0.3 and body:
            del body[self.rng.randrange(len(body)):]        # truncated
        elif r < 0.45:
            body = bytearray(self.mutate(bytes(body)))
        elif r < 0.55:
            body = bytearray(b"\xff" * 10 + b"\x01" + b"\x00")  # 10-byte varint
        elif r < 0.7:
            sub = header(0, "sub", sid=1, pattern=">")
            body += varint(len(sub)) + sub + varint(0)      # a SUB inside
        elif r < 0.8:
            body = bytearray(self.rand_bytes(self.rng.randint(0, 200)))
        # else: a valid body with a count that lies
        count = self.rng.choice([0, n, n + 1, 1 << 31, self.rng.getrandbits(32)])
        return [header(self.rng.randint(0, 99), "batch", count=count), bytes(body)]

    def garbage(self):
        return [self.rand_bytes(self.rng.choice([0, 1, 2, 5, 20, 100]))
                for _ in range(self.rng.randint(1, 4))]

    def huge(self):
        r = self.rng.random()
        big = self.rng.choice([70000, 300000, 1100000])
        if r < 0.25:
            return [header(1, "sub", sid=9, pattern="a" * big)]
        if r < 0.5:
            return [header(2, "pub", topic="t" * big), b"x"]
        if r < 0.7:
            return [header(3, "pub", topic="attack.big"), b"\x00" * 1100000]
        if r < 0.85:
            return [header(4, "hello", protocol_version=1, client_name="n" * big)]
        if r < 0.95:
            return [header(5, "batch", count=1), b"\x00" * 1100000]
        return [header(6, "pub", topic="attack.big"), b"\x00" * 3500000]  # > ZMQ_MAXMSGSIZE

    # -- connections -------------------------------------------------------
    def new_conn(self, ctx):
        routing_id = None
        r = self.rng.random()
        if r < 0.3:
            routing_id = bytes([self.rng.randint(1, 255)]) + self.rand_bytes(
                self.rng.randint(0, 40))
            self.past_ids.append(routing_id)
            del self.past_ids[:-50]
        elif r < 0.4 and self.past_ids:
            routing_id = self.rng.choice(self.past_ids)     # a reused identity
        s = new_dealer(ctx, self.endpoint, routing_id)
        if self.rng.random() < 0.8:
            self.send(s, [header(1, "hello", protocol_version=1,
                                 client_name="attacker%d" % self.idx,
                                 accepts_batches=self.rng.random() < 0.5)], "hello")
        return s

    def send(self, s, frames, kind):
        try:
            s.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            self.c["blocked"] += 1
            return
        self.c["messages"] += 1
        self.c["frames"] += len(frames)
        self.c["bytes"] += sum(len(f) for f in frames)
        self.c["by_kind"][kind] = self.c["by_kind"].get(kind, 0) + 1

    def drain(self, s):
        for _ in range(64):
            try:
                s.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.c["received"] += 1

    def run(self, seconds, stop, release, release_timeout_s, report):
        ctx = zmq.Context()
        conns = [self.new_conn(ctx) for _ in range(self.nconn)]
        deadline = time.monotonic() + seconds
        try:
            for it in range(MAX_LOOP):
                if it % 64 == 0 and (time.monotonic() >= deadline or stop.is_set()):
                    break
                i = self.rng.randrange(len(conns))
                self.drain(conns[i])
                x = self.rng.random() * self.cum[-1]
                kind = self.kinds[next(k for k, c in enumerate(self.cum) if x < c)]
                if kind in ("reconnect", "no_hello"):
                    now = time.monotonic()
                    if now - self.last_reconnect < self.reconnect_gap_s:
                        kind = "valid"
                    else:
                        self.last_reconnect = now
                if kind in ("reconnect", "no_hello"):
                    # Vanish without BYE (the session must time out), and
                    # for no_hello start with a command instead of HELLO.
                    conns[i].close(0)
                    self.c["reconnects"] += 1
                    if kind == "no_hello":
                        conns[i] = new_dealer(ctx, self.endpoint)
                        self.send(conns[i], self.valid(), kind)
                    else:
                        conns[i] = self.new_conn(ctx)
                    continue
                if kind == "valid":
                    frames = self.valid()
                elif kind == "mutated":
                    f = list(self.rng.choice(self.templates))
                    f[0] = self.mutate(f[0])
                    if len(f) == 2 and self.rng.random() < 0.3:
                        f[1] = self.mutate(f[1])
                    frames = f
                elif kind == "frame_count":
                    frames = self.frame_count()
                elif kind == "bad_batch":
                    frames = self.bad_batch()
                elif kind == "garbage":
                    frames = self.garbage()
                elif kind == "bye":
                    frames = [header(0, "bye")]
                else:
                    frames = self.huge()
                self.send(conns[i], frames, kind)
            report.send(self.c)
            # Stay connected and silent: siftd must end these sessions by
            # its client timeout, not because the connections closed.
            release.wait(release_timeout_s)
        finally:
            for s in conns:
                s.close(0)
            ctx.term()


def attacker_main(idx, endpoint, seconds, connections, reconnects_per_s, seed,
                  stop, release, release_timeout_s, report):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    Attacker(idx, endpoint, connections, reconnects_per_s, seed).run(
        seconds, stop, release, release_timeout_s, report)


# ---------------------------------------------------------------------------
# The orchestrator.

def rss_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


class StatsClient:
    """One session that asks siftd for STATS (and so keeps itself alive)."""

    def __init__(self, endpoint):
        self.ctx = zmq.Context()
        self.sock = new_dealer(self.ctx, endpoint)
        self.rid = 1
        self.ok = hello(self.sock, self.rid, "soak-stats", False, 10) is not None

    def stats(self, timeout_s=5):
        if not self.ok:
            return None
        self.rid += 1
        self.sock.send(header(self.rid, "stats"))
        deadline = time.monotonic() + timeout_s
        for _ in range(100000):
            left = deadline - time.monotonic()
            if left <= 0 or not self.sock.poll(int(left * 1000) + 1):
                return None
            h = pb.Header()
            h.ParseFromString(self.sock.recv_multipart()[0])
            if h.request_id == self.rid and h.HasField("stats_reply"):
                return h.stats_reply
        return None

    def close(self):
        try:
            self.sock.send(header(0, "bye"), zmq.NOBLOCK)
        except zmq.ZMQError:
            pass
        self.sock.close(0)
        self.ctx.term()


def start_siftd(binary, timeout_ms, extra, logpath):
    log = open(logpath, "wb")
    proc = subprocess.Popen(
        [binary, "--endpoints=tcp://127.0.0.1:0",
         "--client_timeout_ms=%d" % timeout_ms] + extra,
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    log.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and proc.poll() is None:
        with open(logpath, "rb") as f:
            m = re.search(rb"msg=listening endpoint=(tcp://[0-9.]+:[0-9]+)", f.read())
        if m:
            return proc, m.group(1).decode()
        time.sleep(0.05)
    return proc, None


def stop_process(proc, timeout_s=10):
    """SIGTERM, then SIGKILL; returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def stop_child(p, timeout_s=5):
    p.join(timeout_s)
    if p.is_alive():
        os.kill(p.pid, signal.SIGKILL)
        p.join(5)


def receive(conn, timeout_s):
    if conn.poll(timeout_s):
        try:
            return conn.recv()
        except EOFError:
            return None
    return None


def main():
    global pb
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--siftd", required=True, help="the siftd binary")
    ap.add_argument("--seconds", type=float, default=60, help="attack time")
    ap.add_argument("--attackers", type=int, default=2, help="attacker processes")
    ap.add_argument("--connections", type=int, default=8,
                    help="connections per attacker process")
    ap.add_argument("--reconnects-per-second", type=float, default=50,
                    help="per attacker process, at most")
    ap.add_argument("--rate", type=float, default=1000,
                    help="healthy messages per second")
    ap.add_argument("--window", type=int, default=64,
                    help="healthy publishes awaiting their confirm, at most")
    ap.add_argument("--client-timeout-ms", type=int, default=2000)
    ap.add_argument("--rss-limit-mb", type=float, default=50)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--siftd-arg", action="append", default=[],
                    help="extra siftd flag (repeatable)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory (siftd's log) even on success")
    args = ap.parse_args()
    if (args.seconds <= 0 or args.attackers < 0 or args.connections < 1 or
            args.rate <= 0 or args.reconnects_per_second <= 0):
        ap.error("bad numbers")
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)

    work = tempfile.mkdtemp(prefix="sift-soak-")
    subprocess.run(["protoc", "--python_out=" + work, "-I", os.path.join(REPO, "proto"),
                    os.path.join(REPO, "proto", "sift.proto")], check=True)
    sys.path.insert(0, work)
    import sift_pb2  # noqa: E402  (generated just above)
    pb = sift_pb2

    siftd = None
    children = []
    failures = []
    try:
        siftd, endpoint = start_siftd(args.siftd, args.client_timeout_ms,
                                      args.siftd_arg, os.path.join(work, "siftd.log"))
        if endpoint is None:
            print("soak: siftd did not start; its log:", file=sys.stderr)
            with open(os.path.join(work, "siftd.log"), "rb") as f:
                sys.stderr.write(f.read()[-4000:].decode("utf-8", "replace"))
            return 2
        time.sleep(0.5)
        rss_start = rss_mb(siftd.pid)
        rss_peak = rss_start
        print("soak: siftd pid %d on %s, client_timeout_ms %d, RSS %.1f MB; "
              "attacking for %.0f s (seed %d)" % (siftd.pid, endpoint,
              args.client_timeout_ms, rss_start, args.seconds, seed), flush=True)

        mp = multiprocessing.get_context("fork")
        stop = mp.Event()
        release = mp.Event()
        expiry_wait_s = 10 * args.client_timeout_ms / 1000 + 10
        token = b"H%08x" % random.Random(seed).getrandbits(32)
        h_recv, h_send = mp.Pipe(duplex=False)
        healthy = mp.Process(target=healthy_main, name="healthy",
                             args=(endpoint, args.seconds, args.rate, args.window,
                                   token, stop, h_send))
        healthy.start()
        children.append(healthy)
        first = receive(h_recv, 15)
        if not first or first.get("phase") != "ready":
            failures.append("the healthy clients could not start")
        attackers = []
        t0 = time.monotonic()
        for i in range(args.attackers):
            r, w = mp.Pipe(duplex=False)
            p = mp.Process(target=attacker_main, name="attacker%d" % i,
                           args=(i, endpoint, args.seconds, args.connections,
                                 args.reconnects_per_second, seed + 1 + i, stop,
                                 release, DRAIN_S + expiry_wait_s + 30, w))
            p.start()
            children.append(p)
            attackers.append((p, r))

        # Watch siftd while the attack runs.
        died_at = None
        end = t0 + args.seconds
        while time.monotonic() < end:
            if siftd.poll() is not None:
                died_at = time.monotonic() - t0
                stop.set()
                break
            rss = rss_mb(siftd.pid)
            if rss is not None:
                rss_peak = max(rss_peak, rss)
            time.sleep(0.5)
        attack_end = time.monotonic()
        attack_s = attack_end - t0
        stop.set()

        totals = dict(messages=0, frames=0, bytes=0, blocked=0, received=0,
                      reconnects=0, by_kind={})
        for p, r in attackers:
            c = receive(r, 20) or {}
            for k in ("messages", "frames", "bytes", "blocked", "received", "reconnects"):
                totals[k] += c.get(k, 0)
            for k, v in c.get("by_kind", {}).items():
                totals["by_kind"][k] = totals["by_kind"].get(k, 0) + v
        h = receive(h_recv, DRAIN_S + 20) or {}
        stop_child(healthy)

        # The attackers' connections stay open and silent: their sessions
        # must expire after client_timeout_ms (checked about once a second).
        # Wait for STATS to show only this session, then let the attackers
        # close, and give the allocator one more timeout to settle.
        alive = siftd.poll() is None
        stats = None
        expired = False
        expiry_s = None
        sc = StatsClient(endpoint) if alive else None
        if sc is not None:
            deadline = time.monotonic() + expiry_wait_s
            while time.monotonic() < deadline and siftd.poll() is None:
                stats = sc.stats()
                if stats is not None and stats.clients <= 1:
                    expired = True
                    expiry_s = time.monotonic() - attack_end
                    break
                time.sleep(0.25)
        release.set()
        for p, _ in attackers:
            stop_child(p)
        if sc is not None:
            time.sleep(args.client_timeout_ms / 1000)
            stats = sc.stats() or stats
            sc.close()
        rss_end = rss_mb(siftd.pid) if siftd.poll() is None else None
        alive = siftd.poll() is None

        # ---- report ----
        print("soak: attack ran %.1f s with %d attacker processes x %d connections"
              % (attack_s, args.attackers, args.connections))
        print("attackers: %d messages, %d frames, %.1f MB sent; %d sends refused at "
              "the high-water mark; %d replies read; %d reconnects"
              % (totals["messages"], totals["frames"], totals["bytes"] / 1e6,
                 totals["blocked"], totals["received"], totals["reconnects"]))
        print("attackers by kind: " + ", ".join(
            "%s=%d" % kv for kv in sorted(totals["by_kind"].items())))
        print("healthy: published %d, confirmed %d, publish errors %d%s, "
              "unconfirmed %d; received %d, lost %d, duplicated %d, out of order %d, "
              "foreign %d, sessions lost %d%s"
              % (h.get("published", 0), h.get("confirmed", 0),
                 h.get("publish_errors", 0),
                 " %s" % h["error_codes"] if h.get("error_codes") else "",
                 h.get("unconfirmed", 0), h.get("received", 0), h.get("lost", 0),
                 h.get("duplicated", 0), h.get("out_of_order", 0),
                 h.get("foreign", 0), h.get("sessions_lost", 0),
                 ("; " + h["note"]) if h.get("note") else ""))
        if rss_end is not None:
            delta = rss_end - rss_start
            print("siftd RSS: start %.1f MB, peak %.1f MB, end %.1f MB, delta %+.1f MB "
                  "(limit %.0f MB)" % (rss_start, rss_peak, rss_end, delta,
                                       args.rss_limit_mb))
        else:
            delta = None
            print("siftd RSS: start %.1f MB, peak %.1f MB, end: siftd is gone"
                  % (rss_start, rss_peak))
        if stats is not None:
            print("siftd STATS: clients %d%s, subscriptions %d, messages_in %d, "
                  "messages_out %d, errors_sent %d"
                  % (stats.clients,
                     " (idle sessions expired %.1f s after the attack)" % expiry_s
                     if expired else " (idle sessions NOT all expired)",
                     stats.subscriptions, stats.messages_in, stats.messages_out,
                     stats.errors_sent))
            print("siftd drops: " + (", ".join(
                "%s=%d" % (text(d.reason), d.count) for d in stats.drops) or "none"))
        else:
            print("siftd STATS: no answer")
        logsize = os.path.getsize(os.path.join(work, "siftd.log"))
        print("siftd: %s; log %d bytes" % (
            "alive" if alive else "DIED after %.1f s (exit %s)" % (
                died_at if died_at is not None else attack_s, siftd.returncode),
            logsize))

        if not alive:
            failures.append("siftd died")
        if h.get("published", 0) == 0:
            failures.append("the healthy publisher published nothing")
        for k in ("lost", "duplicated", "publish_errors", "unconfirmed", "sessions_lost"):
            if h.get(k, 0):
                failures.append("healthy stream: %s %d" % (k, h[k]))
        if delta is not None and delta > args.rss_limit_mb:
            failures.append("RSS grew %.1f MB (> %.0f MB)" % (delta, args.rss_limit_mb))
        if stats is None and alive:
            failures.append("siftd did not answer STATS")
        elif alive and not expired:
            failures.append("idle sessions did not expire")
    finally:
        for p in children:
            if p.is_alive():
                os.kill(p.pid, signal.SIGKILL)
                p.join(5)
        if siftd is not None:
            code = stop_process(siftd)
            print("siftd: stopped (exit status %s)" % code)
        if failures or args.keep:
            print("soak: work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("soak: FAIL: " + "; ".join(failures))
        return 1
    print("soak: PASS")
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    sys.exit(main())
