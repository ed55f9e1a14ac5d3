"""The protocol's session logic, shared by Client and AsyncClient, without
any I/O: what to send, what a received frame means, which waiter it
completes, when to say HELLO again and what to resend then.

A driver (the blocking Client's I/O thread, or AsyncClient's tasks) feeds it
received frames and socket events, takes the frames it must send
(take_sendable), and implements the hooks below for its kind of futures and
queues.

Not thread-safe: the driver serializes every call (Client holds its lock;
AsyncClient runs everything on its event loop). Hooks are called with that
serialization in force, so they must not call user code: the driver hands
callbacks and reports to user code later, outside it.
"""

import collections
import itertools
import logging
import time
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

from . import _wire
from .errors import (BadFrame, ClientClosed, ErrorCode, NotConnected,
                     PendingLimit, SiftError, SlowConsumer, UnknownDelivery,
                     error_for_code)
from .message import Message
from .options import (AckOptions, Limits, PluginSpec, SlowConsumerOptions,
                      StreamStart)

log = logging.getLogger("sift")


def stale_delivery(ended: bool = False) -> UnknownDelivery:
    """The error for an ACK, NACK or PROGRESS of a delivery made in an
    earlier session: its id means nothing to the current one. ``ended``:
    the session it came in is the last one, and has ended (the connection
    was lost) with no new one yet; no session could apply it either."""
    where = ("a session with the broker that has ended (the connection was "
             "lost; the client is reconnecting)" if ended else
             "an earlier session with the broker (it restarted, or the "
             "connection was lost since)")
    return UnknownDelivery(
        f"this delivery came in {where}: it can no longer be acknowledged; "
        "a named stream consumer gets it again, and so does a queue group "
        "whose broker kept running; other deliveries are gone")

# Client-side batching of fire-and-forget PUBs (docs/protocol.md §9), as the
# C++ client does it: PUBs that queue up while the sender is busy go out in
# BATCH frames of about this size; a lone message is never held back.
BATCH_FLUSH_BYTES = 64 * 1024
BATCH_PAYLOAD_LIMIT = 16 * 1024
BATCH_MIN_BROKER_BYTES = BATCH_FLUSH_BYTES + BATCH_PAYLOAD_LIMIT + 4096

# Kinds of pending requests: what their answer means.
HELLO = "hello"
OK = "ok"          # confirmed PUB, RELOAD: OK or ERROR
ACK = "ack"        # ACK/NACK/PROGRESS with a request id: OK or ERROR
SUB = "sub"        # SUB from subscribe(): OK, ERROR (DUPLICATE_SID = OK)
RESUB = "resub"    # SUB again after a reconnect: errors are reported
UNSUB = "unsub"    # UNSUB: OK, UNKNOWN_SID = OK
STATS = "stats"    # STATS: STATS_REPLY
RELOAD = "reload"  # RELOAD: OK or ERROR
CONFIRM = "confirm"  # confirmed PUB: OK (its Ok message: stream fields)
STREAM = "stream"  # STREAM: STREAM_REPLY (its StreamInfos) or ERROR
FETCH = "fetch"    # FETCH: DELIVERs with its sid, then OK (the messages)

# Kinds whose request may be sent again after a reconnect when its answer
# never came (doing them twice is harmless).
_IDEMPOTENT = (STATS, RELOAD)

# Why a request sent to a session that ended fails.
_UNANSWERED = (
    "the connection to the broker was lost before it answered; the request "
    "may or may not have taken effect (a message may have been published; "
    "an ack may have been lost, and then the delivery comes again)")


class SubState:
    """A subscription as the session remembers it (to resubscribe after a
    reconnect) and delivers to it. ``sink`` is the driver's queue (None for
    the request/reply inbox, which the session serves itself). ``stream``:
    a stream subscription; ``last_stream_seq`` is the newest record it
    received, where an ephemeral consumer resumes after a reconnect.
    ``slow``: its slow-consumer policy (None: the broker's default)."""

    __slots__ = ("sid", "pattern", "queue_group", "filter", "plugins", "ack",
                 "inbox", "sink", "stream", "last_stream_seq", "slow")

    def __init__(self, sid: int, pattern: bytes, queue_group: bytes = b"",
                 filter_expr: bytes = b"", plugins: Sequence[PluginSpec] = (),
                 ack: Optional[AckOptions] = None, inbox: bool = False,
                 sink: Any = None, stream: Optional[StreamStart] = None,
                 slow: Optional[SlowConsumerOptions] = None) -> None:
        self.sid = sid
        self.pattern = pattern
        self.queue_group = queue_group
        self.filter = filter_expr
        self.plugins = tuple(plugins)
        self.ack = ack
        self.inbox = inbox
        self.sink = sink
        self.stream = stream
        self.last_stream_seq = 0
        self.slow = slow

    def encode(self, rid: int) -> bytes:
        return _wire.sub(rid, self.sid, self.pattern, self.queue_group,
                         self.filter, self.plugins, self.ack, self.stream,
                         self.last_stream_seq, self.slow)

    def check_size(self, limits: Limits) -> None:
        """BadFrame if this SUB's frame 0 would exceed the broker's bound
        (a very long filter or plugin settings)."""
        size = len(self.encode(0xFFFFFFFFFFFFFFFF))
        if size > limits.max_frame0_bytes:
            raise BadFrame(
                f"the SUB would be {size} bytes, over the broker's bound of "
                f"{limits.max_frame0_bytes} bytes for frame 0 (shorten the "
                "filter or the plugin settings)")


class Pending:
    """A request waiting for its answer. ``epoch`` is the session it was
    handed to the socket in (0: not yet sent)."""

    __slots__ = ("rid", "kind", "frames", "waiter", "sid", "resend", "epoch")

    def __init__(self, rid: int, kind: str, frames: List[bytes], waiter: Any,
                 sid: int = 0, resend: bool = True) -> None:
        self.rid = rid
        self.kind = kind
        self.frames = frames
        self.waiter = waiter
        self.sid = sid
        self.resend = resend
        self.epoch = 0


class Session:
    """One client's protocol state across connections and reconnects."""

    def __init__(self, *, name: bytes, accepts_batches: bool, reconnect: bool,
                 ping_interval: float, max_pending: int,
                 batching: bool = True) -> None:
        # Constant after construction.
        self.name = name
        self.accepts_batches = accepts_batches
        self.reconnect = reconnect
        self.max_pending = max_pending
        self.batching = batching
        # itertools.count is safe to advance from any thread (one C call).
        self._ids = itertools.count(1)

        self.ping_interval = ping_interval  # seconds; shortened by WELCOME
        self.limits = Limits()  # replaced whole: readable without the lock
        self.ready = False      # a session is established
        self.had_session = False
        self.lost_connection = False  # disconnected: HELLO again on connect
        self.closed = False
        self.dead: Optional[SiftError] = None  # lost for good
        self.epoch = 0          # counts WELCOMEs
        # The session `epoch` counts has ended (its connection was lost) and
        # no WELCOME came since: no ACK of its deliveries can be applied.
        self.session_ended = False
        self.hello_rid = 0
        self.hello_error: Optional[SiftError] = None
        self.hello_retry_at: Optional[float] = None
        self.hello_backoff = 0.5
        self.connect_waiter: Any = None
        self.next_ping = 0.0
        self.reconnects = 0
        self.broker_dropped = 0

        self.subs: Dict[int, SubState] = {}
        # FETCHes waiting for their OK: sid -> the messages received so far.
        self.fetches: Dict[int, List[Message]] = {}
        self.pending: Dict[int, Pending] = {}
        self.requests: Dict[int, Any] = {}  # reply token -> waiter
        self.inbox_sid = 0
        # Frames the driver must send now, in order: control traffic first
        # (HELLO, PING, PONG, resubscriptions, BYE), then, once a session is
        # established, the user's.
        self.control: Deque[List[bytes]] = collections.deque()
        # (frames, pending, batchable, epoch): epoch is the session an
        # ACK, NACK or PROGRESS belongs to (its delivery ids are that
        # session's), 0 for anything else.
        self.outbox: Deque[Tuple[List[bytes], Optional[Pending], bool,
                                 int]] = collections.deque()

    # ---- Hooks for the driver ----

    def _resolve(self, waiter: Any, value: Any) -> None:
        raise NotImplementedError

    def _fail(self, waiter: Any, exc: BaseException) -> None:
        raise NotImplementedError

    def _deliver(self, sub: SubState, message: Message) -> None:
        """Hands a message to sub.sink (bounded; never blocks)."""
        raise NotImplementedError

    def _close_sink(self, sub: SubState, exc: Optional[SiftError]) -> None:
        raise NotImplementedError

    def _report(self, exc: SiftError) -> None:
        """An error no caller waits for (unmatched ERROR, notice)."""
        raise NotImplementedError

    def _make_message(self, **fields: Any) -> Message:
        raise NotImplementedError

    # ---- Called by user-facing code (under the driver's serialization) ----

    def next_id(self) -> int:
        return next(self._ids)

    def check_open(self) -> None:
        if self.closed:
            raise ClientClosed("the client is closed")
        if self.dead is not None:
            raise NotConnected(
                f"the client lost its session and does not reconnect: "
                f"{self.dead}")

    def enqueue(self, frames: List[bytes], pending: Optional[Pending] = None,
                batchable: bool = False, epoch: int = 0) -> None:
        """Queues user traffic, sent once a session is established.
        PendingLimit beyond max_pending messages. ``epoch``: the session an
        ACK, NACK or PROGRESS belongs to (stale_delivery() if that session
        ended, as soon as it is known to have: not only once a new one
        starts), 0 for traffic of any session."""
        if epoch and epoch != self.epoch:
            raise stale_delivery()
        if epoch and self.session_ended:
            raise stale_delivery(ended=True)
        self.check_open()
        if len(self.outbox) >= self.max_pending:
            state = ("the broker is unreachable, reconnecting" if not
                     self.ready else "the broker or the network is slow")
            raise PendingLimit(
                f"{len(self.outbox)} messages already wait to be sent "
                f"({state}); not queued, try again later")
        if pending is not None:
            self.pending[pending.rid] = pending
        self.outbox.append((frames, pending, batchable, epoch))

    def check_frame0(self, frames: List[bytes]) -> None:
        """BadFrame if frame 0 exceeds the broker's bound: it would answer
        BAD_FRAME with request_id 0, which no waiter is matched to (the
        caller would wait out its timeout)."""
        bound = self.limits.max_frame0_bytes
        if len(frames[0]) > bound:
            raise BadFrame(
                f"the request would be {len(frames[0])} bytes, over the "
                f"broker's bound of {bound} bytes for frame 0: a name, "
                "filter or plugin setting in it is too long")

    def request(self, kind: str, frames: List[bytes], waiter: Any, rid: int,
                sid: int = 0, resend: bool = True, epoch: int = 0) -> None:
        self.check_frame0(frames)
        self.enqueue(frames, Pending(rid, kind, frames, waiter, sid, resend),
                     epoch=epoch)

    def forget(self, rid: int) -> None:
        """The caller stopped waiting (timeout)."""
        p = self.pending.pop(rid, None)
        if p is not None and p.kind == FETCH:
            self.fetches.pop(p.sid, None)

    def fetch(self, frames: List[bytes], waiter: Any, rid: int,
              sid: int) -> None:
        """Queues a FETCH whose DELIVERs carry ``sid``; ``waiter`` completes
        with the list of its messages when the broker's OK comes."""
        self.check_frame0(frames)
        self.enqueue(frames, Pending(rid, FETCH, frames, waiter, sid))
        self.fetches[sid] = []

    def add_sub(self, sub: SubState) -> None:
        self.check_open()
        self.subs[sub.sid] = sub

    def remove_sub(self, sid: int) -> Optional[SubState]:
        sub = self.subs.pop(sid, None)
        if sub is not None:
            self._close_sink(sub, None)
            if sid == self.inbox_sid:
                self.inbox_sid = 0
        return sub

    def queued(self) -> int:
        return len(self.outbox)

    # ---- Called by the driver ----

    def start(self, waiter: Any, now: float) -> None:
        """Queues the first HELLO; ``waiter`` completes on WELCOME (with the
        Limits) or fails on a fatal HELLO error."""
        self.connect_waiter = waiter
        self.next_ping = now + self.ping_interval
        self._hello()

    def _hello(self) -> None:
        self.ready = False
        self.hello_rid = self.next_id()
        self.control.append(
            [_wire.hello(self.hello_rid, self.name, self.accepts_batches)])

    def take_sendable(self) -> List[List[bytes]]:
        """Everything to send now, in order, as lists of frames; consecutive
        small fire-and-forget PUBs packed into BATCHes."""
        out = list(self.control)
        self.control.clear()
        if not self.ready or not self.outbox:
            return out
        batch_ok = (self.batching and
                    self.limits.max_batch_bytes >= BATCH_MIN_BROKER_BYTES)
        group: List[List[bytes]] = []
        group_bytes = 0

        def emit() -> None:
            nonlocal group, group_bytes
            if len(group) == 1:
                out.append(group[0])
            elif group:
                body = b"".join(_wire.batch_entry(f[0], f[1]) for f in group)
                out.append([_wire.batch_header(len(group)), body])
            group = []
            group_bytes = 0

        outbox = self.outbox
        while outbox:
            frames, pending, batchable, _ = outbox.popleft()
            if pending is not None:
                pending.epoch = self.epoch
            if batch_ok and batchable:
                group.append(frames)
                group_bytes += len(frames[0]) + len(frames[1]) + 8
                if group_bytes >= BATCH_FLUSH_BYTES:
                    emit()
                continue
            emit()
            out.append(frames)
        emit()
        return out

    def tick(self, now: float) -> None:
        """Timers: keepalive PINGs, HELLO retries."""
        if self.hello_retry_at is not None and now >= self.hello_retry_at:
            self.hello_retry_at = None
            if not self.closed and self.dead is None:
                self._hello()
        if now >= self.next_ping:
            self.next_ping = now + self.ping_interval
            if self.ready and not self.closed:
                self.control.append([_wire.ping()])

    def next_deadline(self) -> float:
        """When tick() next has something to do (monotonic seconds)."""
        t = self.next_ping
        if self.hello_retry_at is not None:
            t = min(t, self.hello_retry_at)
        return t

    def on_connected(self) -> None:
        if self.lost_connection:
            self.lost_connection = False
            if not self.closed and self.dead is None:
                self._hello()

    def on_disconnected(self) -> None:
        self.lost_connection = True
        if self.ready:
            # The broker ends a session whose connection closes: acks of its
            # deliveries fail now, not at their timeouts or the next WELCOME.
            self.session_ended = True
            self._drop_stale_acks(ended=True)
            self._fail_sent_acks()
            self.ready = False
            if not self.reconnect:
                self.die(NotConnected(
                    "lost the connection to the broker (reconnect=False)"))

    def close(self) -> None:
        """Stops user traffic; queues BYE if a session is established."""
        if self.closed:
            return
        self.closed = True
        if self.ready:
            self.control.append([_wire.bye()])

    def outbox_drained(self) -> bool:
        return not self.outbox and not self.control

    def die(self, exc: SiftError) -> None:
        """The session is lost for good: every waiter fails with ``exc``."""
        if self.dead is None:
            self.dead = exc
        self.ready = False
        self.shutdown(exc)

    def shutdown(self, exc: SiftError) -> None:
        """Fails every waiter and closes every subscription (on close or
        death)."""
        pending, self.pending = self.pending, {}
        requests, self.requests = self.requests, {}
        for p in pending.values():
            self._fail(p.waiter, exc)
        for w in requests.values():
            self._fail(w, exc)
        if self.connect_waiter is not None:
            self._fail(self.connect_waiter, exc)
            self.connect_waiter = None
        self.fetches = {}
        subs, self.subs = self.subs, {}
        close_exc = None if isinstance(exc, ClientClosed) else exc
        for sub in subs.values():
            self._close_sink(sub, close_exc)
        self.outbox.clear()

    # ---- Received frames ----

    def on_frames(self, frames: List[bytes]) -> None:
        if not frames:
            return
        try:
            h = _wire.parse(frames[0])
        except SiftError as e:
            log.warning("sift: ignoring a message the client cannot parse: %s",
                        e)
            return
        cmd = h.WhichOneof("command")
        if cmd == "deliver":
            if len(frames) >= 2:
                self._on_deliver(h.deliver, frames[1])
        elif cmd == "batch":
            if len(frames) >= 2:
                self._on_batch(frames[1])
        elif cmd == "welcome":
            self._on_welcome(h)
        elif cmd == "error":
            self._on_error(h)
        elif cmd in ("ok", "pong", "stats_reply", "stream_reply"):
            self._on_reply(h, cmd)
        elif cmd == "ping":
            self.control.append([_wire.pong(h.request_id)])
        # Anything else is not sent to clients: ignore it.

    def _on_batch(self, body: bytes) -> None:
        try:
            for header, payload in _wire.iter_batch(body):
                try:
                    h = _wire.parse(header)
                except SiftError:
                    continue
                cmd = h.WhichOneof("command")
                if cmd == "deliver":
                    self._on_deliver(h.deliver, payload)
                elif cmd == "ok":  # accepts_batched_replies (§9)
                    self._on_reply(h, cmd)
                elif cmd == "error":
                    self._on_error(h)
        except SiftError as e:
            log.warning("sift: malformed BATCH from the broker: %s", e)

    def _on_deliver(self, d, payload: bytes) -> None:
        sub = self.subs.get(d.sid)
        if sub is None:
            fetched = self.fetches.get(d.sid)
            if fetched is not None:
                fetched.append(self._message_of(d, payload))
            return  # unsubscribed meanwhile, or a FETCH given up on
        msg = self._message_of(d, payload)
        if d.stream_seq > sub.last_stream_seq:
            sub.last_stream_seq = d.stream_seq
        if sub.inbox:
            token = msg.topic.rpartition(".")[2]
            if token.isdigit():
                waiter = self.requests.pop(int(token), None)
                if waiter is not None:
                    self._resolve(waiter, msg)
            return  # late reply (timed out), or not ours
        self._deliver(sub, msg)

    def _message_of(self, d, payload: bytes) -> Message:
        m = self._make_message(
            topic=d.topic.decode("latin-1"), payload=payload,
            reply_to=d.reply_to.decode("latin-1"),
            headers=_wire.headers_of(d.headers) if len(d.headers) else [],
            sid=d.sid, delivery_id=d.delivery_id, attempt=d.attempt,
            retained=d.retained, stream_seq=d.stream_seq,
            timestamp_ms=d.timestamp_ms)
        m._epoch = self.epoch
        return m

    def _on_welcome(self, h) -> None:
        if h.request_id != self.hello_rid:
            return  # answer to an older HELLO
        w = h.welcome
        self.limits = Limits.from_welcome(w)
        self.epoch += 1
        self.session_ended = False
        self.hello_error = None
        self.hello_retry_at = None
        self.hello_backoff = 0.5
        if w.client_timeout_ms > 0:
            self.ping_interval = max(
                0.01, min(self.ping_interval, w.client_timeout_ms / 3000.0))
            self.next_ping = min(self.next_ping,
                                 time.monotonic() + self.ping_interval)
        if self.had_session:
            self.reconnects += 1
            self._drop_stale_acks()
            self._resume()
        self.had_session = True
        self.ready = True
        if self.connect_waiter is not None:
            self._resolve(self.connect_waiter, self.limits)
            self.connect_waiter = None

    def _drop_stale_acks(self, ended: bool = False) -> None:
        """After a new WELCOME: ACKs, NACKs and PROGRESSes queued for an
        earlier session are not sent; their delivery ids were that
        session's (a restarted broker numbers its deliveries from 1 again,
        and would take them for others). ``ended``: the current session has
        just ended (on_disconnected), so its own are not sent either. Their
        waiters get stale_delivery()."""
        kept: Deque[Tuple[List[bytes], Optional[Pending], bool, int]] = (
            collections.deque())
        for item in self.outbox:
            _, pending, _, epoch = item
            if not epoch or (epoch == self.epoch and not ended):
                kept.append(item)
                continue
            if pending is not None:
                self.pending.pop(pending.rid, None)
                self._fail(pending.waiter, stale_delivery(ended))
        self.outbox = kept

    def _fail_sent_acks(self) -> None:
        """On losing the connection: ACKs, NACKs and PROGRESSes with a
        timeout that were sent in the session that just ended and not
        answered. No answer can come (the broker ended that session with its
        connection), so their waiters fail now with NotConnected, as
        _resume would fail them at the next WELCOME (or their timeout,
        with the broker gone for good)."""
        for p in list(self.pending.values()):
            if p.kind == ACK and p.epoch == self.epoch:
                del self.pending[p.rid]
                self._fail(p.waiter, NotConnected(_UNANSWERED))

    def _resume(self) -> None:
        """After a new WELCOME: subscribe again, resend what the broker
        refused with HELLO_REQUIRED (never executed), and settle requests the
        old session never answered."""
        sub_rids: Dict[int, int] = {}
        for p in list(self.pending.values()):
            if p.kind == SUB and p.epoch == 0:
                sub_rids[p.sid] = -1  # still in the outbox: goes out itself
            elif p.kind in (SUB, RESUB):
                sub_rids[p.sid] = p.rid
        for sid, sub in self.subs.items():
            if sub.inbox:
                sub.pattern = (self.limits.inbox_prefix + ".>").encode()
            rid = sub_rids.get(sid)
            if rid == -1:
                continue
            if rid is None:
                rid = self.next_id()
                self.pending[rid] = Pending(rid, RESUB, [], None, sid)
            self.pending[rid].epoch = self.epoch
            self.control.append([sub.encode(rid)])
        for p in list(self.pending.values()):
            if p.epoch == 0 or p.epoch == self.epoch:
                continue  # not sent yet, or just now
            if p.kind == UNSUB:
                # The new session does not hold the subscription: done.
                del self.pending[p.rid]
                self._resolve(p.waiter, None)
            elif p.kind in _IDEMPOTENT or p.resend == "refused":
                p.epoch = self.epoch
                self.control.append(p.frames)
            else:
                # Sent to the old session, never answered: it may or may not
                # have taken effect there.
                del self.pending[p.rid]
                if p.kind == FETCH:
                    self.fetches.pop(p.sid, None)
                self._fail(p.waiter, NotConnected(_UNANSWERED))

    def _on_error(self, h) -> None:
        e = h.error
        code = e.code
        rid = h.request_id
        if code == ErrorCode.SLOW_CONSUMER:
            self.broker_dropped += e.dropped
            self._report(SlowConsumer(e.message, dropped=e.dropped))
            return
        exc = error_for_code(code, e.message)
        if not rid and getattr(e, "sid", 0):
            # A notice that ends one of our subscriptions (its stream was
            # deleted): its iterator ends with this error.
            sub = self.subs.pop(e.sid, None)
            if sub is not None:
                self._close_sink(sub, exc)
            self._report(exc)
            return
        if rid and rid == self.hello_rid:
            self._on_hello_error(exc)
            return
        p = self.pending.get(rid) if rid else None
        if code == ErrorCode.HELLO_REQUIRED:
            if p is not None:
                if (self.reconnect and p.resend and p.kind != RESUB
                        and not self.closed):
                    p.resend = "refused"  # resent after the next WELCOME
                else:
                    del self.pending[rid]
                    if p.kind == FETCH:
                        self.fetches.pop(p.sid, None)
                    self._fail(p.waiter, exc)
            if self.ready:
                if self.reconnect:
                    self._hello()
                else:
                    self.die(NotConnected(
                        f"the broker lost this client's session "
                        f"(reconnect=False): {e.message}"))
            return
        if p is None:
            self._report(exc)
            return
        del self.pending[rid]
        if p.kind == FETCH:
            self.fetches.pop(p.sid, None)
        if p.kind == SUB:
            if code == ErrorCode.DUPLICATE_SID:
                # Resubscribed after a reconnect first: the broker holds it.
                self._resolve(p.waiter, None)
            else:
                self.remove_sub(p.sid)
                self._fail(p.waiter, exc)
        elif p.kind == RESUB:
            if code != ErrorCode.DUPLICATE_SID:
                sub = self.subs.pop(p.sid, None)
                if sub is not None:
                    # Say which subscription, and when (the C++ client's
                    # words): the caller made it long before.
                    exc = error_for_code(code, (
                        "subscription to "
                        f"{sub.pattern.decode('utf-8', 'backslashreplace')} "
                        "ended: the broker refused it when the client "
                        "subscribed again after a reconnect: "
                        f"{e.message}"))
                    self._close_sink(sub, exc)
                    if p.sid == self.inbox_sid:
                        self.inbox_sid = 0
                self._report(exc)
        elif p.kind == UNSUB and code == ErrorCode.UNKNOWN_SID:
            self._resolve(p.waiter, None)
        else:
            self._fail(p.waiter, exc)

    def _on_hello_error(self, exc: SiftError) -> None:
        self.hello_error = exc
        if exc.code in (ErrorCode.TOO_MANY_CLIENTS, ErrorCode.INTERNAL):
            # Retry later, with backoff (docs/protocol.md §15.2).
            self.hello_retry_at = time.monotonic() + self.hello_backoff
            self.hello_backoff = min(self.hello_backoff * 2, 5.0)
            self._report(exc)
            return
        self.die(exc)

    def _on_reply(self, h, cmd: str) -> None:
        rid = h.request_id
        if not rid:
            return
        p = self.pending.pop(rid, None)
        if p is None:
            return
        if p.kind == STATS:
            if cmd == "stats_reply":
                self._resolve(p.waiter, h.stats_reply)
            else:
                self._fail(p.waiter, SiftError(f"unexpected {cmd} to STATS"))
        elif p.kind == RESUB:
            return
        elif p.kind == CONFIRM:
            self._resolve(p.waiter, h.ok if cmd == "ok" else None)
        elif p.kind == STREAM:
            self._resolve(p.waiter, list(h.stream_reply.streams)
                          if cmd == "stream_reply" else [])
        elif p.kind == FETCH:
            self._resolve(p.waiter, self.fetches.pop(p.sid, []))
        else:
            self._resolve(p.waiter, None)
