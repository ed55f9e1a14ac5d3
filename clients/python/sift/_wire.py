"""Encoding and decoding of sift's frames (docs/protocol.md §2, §4, §9) with
the protobuf module generated from proto/sift.proto.

Every encoder returns frame 0 (a serialized ``sift.wire.Header``) as bytes.
Pure functions; thread-safe.
"""

from typing import Iterator, List, Optional, Sequence, Tuple

from ._pb import pb
from .errors import BadFrame
from .options import AckOptions, PluginSpec, SlowConsumerOptions, StreamStart
from ._validate import to_bytes

PROTOCOL_VERSION = 1

Header = pb.Header


def _header(rid: int) -> "pb.Header":
    h = pb.Header()
    if rid:
        h.request_id = rid
    return h


def hello(rid: int, name: bytes, accepts_batches: bool) -> bytes:
    h = _header(rid)
    h.hello.protocol_version = PROTOCOL_VERSION
    if name:
        h.hello.client_name = name
    if accepts_batches:
        # DELIVERs, and OKs and ERRORs too, may come inside BATCH (§9).
        h.hello.accepts_batches = True
        h.hello.accepts_batched_replies = True
    return h.SerializeToString()


def pub(rid: int, topic: bytes, reply_to: bytes, confirm: bool,
        headers: Sequence[Tuple[bytes, bytes]], retain: bool = False,
        delay_ms: int = 0, deliver_at_ms: int = 0) -> bytes:
    h = _header(rid)
    p = h.pub
    p.topic = topic
    if reply_to:
        p.reply_to = reply_to
    if confirm:
        p.confirm = True
    if retain:
        p.retain = True
    if delay_ms:
        p.delay_ms = delay_ms
    if deliver_at_ms:
        p.deliver_at_ms = deliver_at_ms
    for k, v in headers:
        f = p.headers.add()
        f.key = k
        if v:
            f.value = v
    return h.SerializeToString()


def sub(rid: int, sid: int, pattern: bytes, queue_group: bytes,
        filter_expr: bytes, plugins: Sequence[PluginSpec],
        ack: Optional[AckOptions], stream: Optional[StreamStart] = None,
        resume_after: int = 0,
        slow: Optional[SlowConsumerOptions] = None) -> bytes:
    h = _header(rid)
    s = h.sub
    s.sid = sid
    s.pattern = pattern
    if queue_group:
        s.queue_group = queue_group
    if filter_expr:
        s.filter = filter_expr
    for spec in plugins:
        p = s.plugins.add()
        p.name = to_bytes(spec.name)
        for key, value in spec.setting_pairs():
            kv = p.settings.add()
            kv.key = to_bytes(key)
            kv.value = to_bytes(value)
    if ack is not None:
        s.ack.SetInParent()  # present, even with every field defaulted
        ack.fill(s.ack)
    if stream is not None:
        s.stream.SetInParent()
        stream.fill(s.stream, resume_after)
    if slow is not None:
        s.slow.SetInParent()  # present, even with every field defaulted
        slow.fill(s.slow)
    return h.SerializeToString()


def unsub(rid: int, sid: int) -> bytes:
    h = _header(rid)
    h.unsub.sid = sid
    return h.SerializeToString()


def _empty(rid: int, field: str) -> bytes:
    h = _header(rid)
    getattr(h, field).SetInParent()
    return h.SerializeToString()


def ping(rid: int = 0) -> bytes:
    return _empty(rid, "ping")


def pong(rid: int = 0) -> bytes:
    return _empty(rid, "pong")


def stats(rid: int) -> bytes:
    return _empty(rid, "stats")


def reload(rid: int) -> bytes:
    return _empty(rid, "reload")


def declare(rid: int, pattern: bytes, queue_group: bytes,
            ack: Optional[AckOptions] = None) -> bytes:
    """DECLARE (protocol.md §6.2): a work queue the broker keeps."""
    h = _header(rid)
    h.declare.pattern = to_bytes(pattern)
    h.declare.queue_group = to_bytes(queue_group)
    if ack is not None:
        ack.fill(h.declare.ack)
    return h.SerializeToString()


# STREAM ops (StreamOp of proto/sift.proto).
STREAM_INFO = 0
STREAM_ADD = 1
STREAM_DELETE = 2
STREAM_LIST = 3
CONSUMER_DELETE = 4


def stream_request(rid: int, op: int, name: bytes = b"",
                   subjects: Sequence[bytes] = (), max_age_ms: int = 0,
                   max_bytes: int = 0, max_msgs: int = 0, fsync: str = "",
                   dedup_window_ms: int = 0, segment_max_bytes: int = 0,
                   consumer: bytes = b"", dedup_max_ids: int = 0) -> bytes:
    """STREAM (add, info, list, delete, delete a consumer)."""
    h = _header(rid)
    r = h.stream
    r.SetInParent()
    if op:
        r.op = op
    c = r.config
    if name:
        c.name = name
    c.subjects.extend(subjects)
    if max_age_ms:
        c.max_age_ms = max_age_ms
    if max_bytes:
        c.max_bytes = max_bytes
    if max_msgs:
        c.max_msgs = max_msgs
    if fsync:
        c.fsync = fsync
    if dedup_window_ms:
        c.dedup_window_ms = dedup_window_ms
    if segment_max_bytes:
        c.segment_max_bytes = segment_max_bytes
    if dedup_max_ids:
        c.dedup_max_ids = dedup_max_ids
    if consumer:
        r.consumer = consumer
    return h.SerializeToString()


def fetch(rid: int, sid: int, start: StreamStart, batch: int,
          max_wait_ms: int, pattern: bytes = b"",
          ack: Optional[AckOptions] = None) -> bytes:
    """FETCH: up to ``batch`` records as DELIVERs with ``sid``, then OK."""
    h = _header(rid)
    f = h.fetch
    f.sid = sid
    f.start.SetInParent()
    start.fill(f.start)
    f.batch = batch
    if max_wait_ms:
        f.max_wait_ms = max_wait_ms
    if pattern:
        f.pattern = pattern
    if ack is not None:
        f.ack.SetInParent()
        ack.fill(f.ack)
    return h.SerializeToString()


def bye() -> bytes:
    return _empty(0, "bye")


def ack(rid: int, delivery_ids: Sequence[int]) -> bytes:
    h = _header(rid)
    h.ack.delivery_ids.extend(delivery_ids)
    return h.SerializeToString()


def progress(rid: int, delivery_ids: Sequence[int]) -> bytes:
    h = _header(rid)
    h.progress.delivery_ids.extend(delivery_ids)
    return h.SerializeToString()


def nack(rid: int, delivery_id: int, delay_ms: int) -> bytes:
    h = _header(rid)
    h.nack.delivery_id = delivery_id
    if delay_ms:
        h.nack.delay_ms = delay_ms
    return h.SerializeToString()


def batch_header(count: int) -> bytes:
    h = pb.Header()
    h.batch.count = count
    return h.SerializeToString()


# ---- Batches (§9) ----

def varint(n: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int."""
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _read_varint(buf: bytes, pos: int) -> Tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise BadFrame("batch: truncated or overlong varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def batch_entry(header: bytes, payload: bytes) -> bytes:
    """One entry of a BATCH body: varint length, header, varint length,
    payload."""
    return b"".join((varint(len(header)), header, varint(len(payload)),
                     payload))


def iter_batch(body: bytes) -> Iterator[Tuple[bytes, bytes]]:
    """(header bytes, payload) of each entry of a BATCH body, in order.
    BadFrame if an entry does not fit (entries before it are yielded)."""
    pos = 0
    n = len(body)
    mv = memoryview(body)
    while pos < n:
        hlen, pos = _read_varint(body, pos)
        if pos + hlen > n:
            raise BadFrame("batch: entry header overruns the frame")
        header = bytes(mv[pos:pos + hlen])
        pos += hlen
        plen, pos = _read_varint(body, pos)
        if pos + plen > n:
            raise BadFrame("batch: entry payload overruns the frame")
        payload = bytes(mv[pos:pos + plen])
        pos += plen
        yield header, payload


def parse(frame: bytes) -> "pb.Header":
    """A Header from frame 0; BadFrame if it does not parse."""
    try:
        return pb.Header.FromString(frame)
    except Exception as e:  # google.protobuf.message.DecodeError
        raise BadFrame(f"unparsable header frame: {e}") from None


def headers_of(fields) -> List[Tuple[str, bytes]]:
    """A DELIVER's HeaderFields as (str key, bytes value) pairs, in order.
    Keys are token characters (ASCII), so latin-1 decodes them exactly."""
    return [(f.key.decode("latin-1"), f.value) for f in fields]
