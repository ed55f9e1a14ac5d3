"""Options of subscriptions (explicit acks, slow-consumer policies, plugins),
the values of durable streams (StreamStart, StreamInfo, PublishAck) and the
broker's limits.

Plain immutable values: safe to share between threads.
"""

import collections.abc
import dataclasses
import datetime
import math
from typing import Iterable, Mapping, Optional, Sequence, Tuple, Union

from . import _args, _validate
from .errors import InvalidArgumentType, InvalidRequest


@dataclasses.dataclass(frozen=True)
class AckOptions:
    """At-least-once delivery for a subscription (docs/protocol.md §6.2).

    The broker keeps each delivery until it is acknowledged
    (``message.ack()``), redelivers it after a NACK or when its ack wait
    runs out (with exponential backoff and jitter), to another member of the
    queue group when there is one, and sends it to the dead-letter topic
    ``$sift.deadletter.<topic>`` after ``max_deliver`` attempts. A field left
    None takes the broker's default (shown). Durations are in seconds
    (floats; sent to the broker as whole milliseconds).

    Attributes:
      ack_wait: seconds a delivery may go without ack or in_progress before
        it is redelivered (default 30; >= 0.001).
      max_deliver: attempts before the dead-letter topic (default 5;
        0 = unlimited).
      max_in_flight: unacknowledged deliveries at once, the prefetch
        (default 1000; >= 1).
      backoff_initial: seconds before the first redelivery (default 1).
      backoff_multiplier: each later delay is the previous times this
        (default 2.0; >= 1).
      backoff_max: the delay's cap in seconds (default 60;
        >= backoff_initial).
      backoff_jitter: 0..1: the delay is cut by a random share up to this
        (default 0.2).
      max_queued: messages waiting for a consumer with room; beyond, new
        ones are dead-lettered (default 100000).

    In a queue group, max_deliver, max_queued and the backoff are the
    group's (set by its first member); max_in_flight and ack_wait are each
    member's. Values out of range get InvalidRequest from the broker.
    """

    ack_wait: Optional[float] = None
    max_deliver: Optional[int] = None
    max_in_flight: Optional[int] = None
    backoff_initial: Optional[float] = None
    backoff_multiplier: Optional[float] = None
    backoff_max: Optional[float] = None
    backoff_jitter: Optional[float] = None
    max_queued: Optional[int] = None

    def __post_init__(self) -> None:
        # Wrong types and values now, not when the SUB is encoded.
        for what in ("ack_wait", "backoff_initial", "backoff_max"):
            value = getattr(self, what)
            if value is not None:
                seconds_to_ms(value, what)
        for what in ("max_deliver", "max_in_flight", "max_queued"):
            value = getattr(self, what)
            if value is not None:
                _u32(value, what)
        for what in ("backoff_multiplier", "backoff_jitter"):
            value = getattr(self, what)
            if value is not None:
                _finite(value, what)

    def fill(self, policy) -> None:
        """Writes the set fields into a wire AckPolicy (seconds -> ms)."""
        if self.ack_wait is not None:
            policy.ack_wait_ms = seconds_to_ms(self.ack_wait, "ack_wait")
        if self.max_deliver is not None:
            policy.max_deliver = _u32(self.max_deliver, "max_deliver")
        if self.max_in_flight is not None:
            policy.max_in_flight = _u32(self.max_in_flight, "max_in_flight")
        if self.backoff_initial is not None:
            policy.backoff_initial_ms = seconds_to_ms(self.backoff_initial,
                                                      "backoff_initial")
        if self.backoff_multiplier is not None:
            policy.backoff_multiplier = float(self.backoff_multiplier)
        if self.backoff_max is not None:
            policy.backoff_max_ms = seconds_to_ms(self.backoff_max,
                                                  "backoff_max")
        if self.backoff_jitter is not None:
            policy.backoff_jitter = float(self.backoff_jitter)
        if self.max_queued is not None:
            policy.max_queued = _u32(self.max_queued, "max_queued")


#: Slow-consumer policies by name, as numbered by SlowPolicy in
#: proto/sift.proto.
SLOW_POLICIES = {"drop-newest": 0, "drop-oldest": 1, "disconnect": 2}


@dataclasses.dataclass(frozen=True)
class SlowConsumerOptions:
    """What the broker does when a subscription's client does not read fast
    enough (docs/delivery.md §7): ``subscribe(...,
    slow=SlowConsumerOptions("drop-oldest", max_pending_bytes=1 << 20))``,
    or just ``slow="drop-oldest"``.

    The subscription's queue counts as full when the broker holds more than
    ``max_pending_bytes`` for this client (all its subscriptions): handed to
    its connection and not yet written. Then, by ``policy``:

    - ``"drop-newest"`` (the broker's default): the new delivery is dropped.
    - ``"drop-oldest"``: it waits in the broker, with at most
      ``max_pending_msgs`` (and ``max_pending_bytes``) others of this
      subscription; past that the oldest waiting one is dropped. They are
      sent as the client catches up, so it gets the newest.
    - ``"disconnect"``: the broker closes the client's connection (after a
      SlowConsumer notice, if it fits); the client reconnects and subscribes
      again, and what was published meanwhile is lost.

    Every dropped delivery is counted in the broker's stats()
    (``"slow_consumer"``) and told to the client: SlowConsumer notices to
    its error_callback, and ``broker_dropped``. Only for at-most-once live
    subscriptions: the broker ignores it with ``ack`` (bounded by
    AckOptions.max_in_flight instead) and with ``stream`` (records wait in
    the stream). Separate from the client's own queue (queue_max_messages,
    queue_max_bytes).

    Attributes:
      policy: ``"drop-newest"``, ``"drop-oldest"`` or ``"disconnect"``.
      max_pending_bytes: the bound in bytes (payload, topic and headers).
        None or 0: the broker's max_pending_bytes_per_client (default
        64 MiB), which also caps larger values.
      max_pending_msgs: ``"drop-oldest"``: most messages waiting in the
        broker for this subscription. None or 0: 1000.
    """

    policy: str = "drop-newest"
    max_pending_bytes: Optional[int] = None
    max_pending_msgs: Optional[int] = None

    def __post_init__(self) -> None:
        # InvalidRequest now, not when the SUB is encoded.
        if self.policy not in SLOW_POLICIES:
            raise InvalidRequest(
                f"slow-consumer policy {self.policy!r}: use \"drop-newest\", "
                "\"drop-oldest\" or \"disconnect\"")
        _u64(self.max_pending_bytes, "max_pending_bytes")
        if self.max_pending_msgs is not None:
            _u32(self.max_pending_msgs, "max_pending_msgs")

    def fill(self, slow) -> None:
        """Writes this into a wire SlowConsumer."""
        slow.policy = SLOW_POLICIES[self.policy]
        slow.max_pending_bytes = _u64(self.max_pending_bytes,
                                      "max_pending_bytes")
        slow.max_pending_msgs = _u32(self.max_pending_msgs or 0,
                                     "max_pending_msgs")


def slow_options(slow: Union[None, str, "SlowConsumerOptions"]
                 ) -> Optional[SlowConsumerOptions]:
    """subscribe()'s ``slow`` argument as SlowConsumerOptions (None: the
    broker's default), or InvalidRequest (InvalidArgumentType for a wrong
    type)."""
    if slow is None or isinstance(slow, SlowConsumerOptions):
        return slow
    if isinstance(slow, str):
        return SlowConsumerOptions(slow)
    raise InvalidArgumentType(
        f"slow={_args.show(slow)}: expected a policy name (\"drop-newest\", "
        "\"drop-oldest\", \"disconnect\"), a SlowConsumerOptions or None, "
        f"got {type(slow).__name__}")


def ack_options(ack: Union[None, bool, "AckOptions"],
                what: str = "ack") -> Optional[AckOptions]:
    """The ``ack`` argument of subscribe(), fetch() and declare() as
    AckOptions (None: no explicit acks), or InvalidArgumentType."""
    if ack is None or ack is False:
        return None
    if ack is True:
        return AckOptions()
    if isinstance(ack, AckOptions):
        return ack
    raise InvalidArgumentType(
        f"{what}={_args.show(ack)}: expected True (explicit acks with the "
        "broker's defaults), a sift.AckOptions, or None/False (no explicit "
        f"acks), got {type(ack).__name__}")


def _u32(value: int, what: str) -> int:
    return _args.integer(value, what, 0, 0xFFFFFFFF)


def _finite(value: float, what: str) -> float:
    if not _args.is_number(value):
        raise InvalidArgumentType(f"{what}={_args.show(value)}: expected a "
                                  f"number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise InvalidRequest(f"{what}={value}: not a finite number")
    return float(value)


def seconds_to_ms(seconds: float, what: str) -> int:
    """Seconds (float) to whole milliseconds for the wire, rounded, and at
    least 1 for a positive duration (0 on the wire means none: answer at
    once, no delay given); an InvalidRequest if negative, not a finite
    number or beyond 32 bits of milliseconds (InvalidArgumentType if not a
    number)."""
    _args.seconds(seconds, what)
    ms = round(seconds * 1000)
    if ms == 0 and seconds > 0:
        ms = 1
    if ms > 0xFFFFFFFF:
        raise InvalidRequest(f"{what}={seconds}: too long (at most "
                             f"{0xFFFFFFFF // 1000} s)")
    return ms


Settings = Union[Mapping[str, Union[str, bytes]],
                 Iterable[Tuple[str, Union[str, bytes]]]]


@dataclasses.dataclass(frozen=True)
class PluginSpec:
    """A plugin the broker runs on one subscription's deliveries
    (docs/plugins.md): its name and settings, e.g.
    ``PluginSpec("payload_filter", {"format": "json", "expr": "amount > 100"})``.
    Settings keep their order; values are str (UTF-8) or bytes."""

    name: str
    settings: Union[Settings, Sequence] = ()

    def __post_init__(self) -> None:
        # Wrong types now, not when the SUB is encoded.
        _args.name(self.name, "PluginSpec name")
        s = self.settings
        if isinstance(s, (str, bytes)) or not isinstance(
                s, (collections.abc.Mapping, collections.abc.Iterable)):
            raise InvalidArgumentType(
                f"PluginSpec settings={_args.show(s)}: expected a dict or a "
                f"list of (key, value) pairs, got {type(s).__name__}")
        if not isinstance(s, (collections.abc.Mapping,
                              collections.abc.Sequence)):
            # A one-shot iterable (a generator): kept, not used up here.
            object.__setattr__(self, "settings", tuple(s))
        for pair in self.setting_pairs():
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise InvalidArgumentType(
                    f"PluginSpec {self.name!r} setting {_args.show(pair)}: "
                    "expected a (key, value) pair")
            _args.name(pair[0], f"PluginSpec {self.name!r} setting key")
            _args.name(pair[1], f"PluginSpec {self.name!r} setting "
                       f"{pair[0]!r}")

    def setting_pairs(self):
        """The settings as a list of (key, value) pairs, in order."""
        s = self.settings
        return list(s.items()) if isinstance(s, Mapping) else list(s)


def plugin_specs(plugins: Sequence[PluginSpec]) -> Tuple[PluginSpec, ...]:
    """subscribe()'s ``plugins`` as a tuple of PluginSpecs, or
    InvalidArgumentType."""
    if isinstance(plugins, PluginSpec) or isinstance(plugins, (str, bytes)) \
            or not isinstance(plugins, collections.abc.Iterable):
        raise InvalidArgumentType(
            f"plugins={_args.show(plugins)}: expected a list of "
            f"sift.PluginSpec, got {type(plugins).__name__}")
    specs = tuple(plugins)
    for spec in specs:
        if not isinstance(spec, PluginSpec):
            raise InvalidArgumentType(
                f"plugins: {_args.show(spec)} is not a sift.PluginSpec "
                f"(got {type(spec).__name__})")
    return specs


@dataclasses.dataclass(frozen=True)
class Limits:
    """The broker's limits and identity from its WELCOME (docs/protocol.md
    §3.1). Sizes in bytes, timeouts in milliseconds as on the wire."""

    server_version: str = ""
    client_id: str = ""
    inbox_prefix: str = ""
    max_payload_bytes: int = 1 << 20
    max_topic_length: int = 256
    max_topic_tokens: int = 16
    max_subscriptions: int = 10000
    client_timeout_ms: int = 30000
    max_batch_bytes: int = 0
    max_headers: int = 0
    max_headers_bytes: int = 0
    max_delay_ms: int = 0

    @property
    def max_frame0_bytes(self) -> int:
        """The broker's bound on frame 0 of any message (protocol.md §2);
        beyond it the broker answers BAD_FRAME with request_id 0, which no
        request can be matched to, so the client checks it first."""
        return (2 * self.max_topic_length + 1280 + self.max_headers_bytes +
                16 * self.max_headers)

    @classmethod
    def from_welcome(cls, w) -> "Limits":
        """The Limits of a wire Welcome message."""
        return cls(server_version=w.server_version, client_id=w.client_id,
                   inbox_prefix=w.inbox_prefix,
                   max_payload_bytes=w.max_payload_bytes,
                   max_topic_length=w.max_topic_length,
                   max_topic_tokens=w.max_topic_tokens,
                   max_subscriptions=w.max_subscriptions,
                   client_timeout_ms=w.client_timeout_ms,
                   max_batch_bytes=w.max_batch_bytes,
                   max_headers=w.max_headers,
                   max_headers_bytes=w.max_headers_bytes,
                   max_delay_ms=w.max_delay_ms)


# ---- Durable streams (docs/python.md, "Streams"; docs/delivery.md §3) ----

#: The header a publish carries to be deduplicated by a stream (JetStream's
#: Nats-Msg-Id); ``publish(..., msg_id=...)`` sets it.
MSG_ID_HEADER = "sift-msg-id"

# DeliverPolicy of proto/sift.proto.
_DELIVER_NEW = 0
_DELIVER_ALL = 1
_DELIVER_FROM_SEQ = 2
_DELIVER_FROM_TIME = 3

#: Where a stream consumer starts: ``"all"`` (the stream's first record),
#: ``"new"`` (records appended from now on), an ``int`` sequence number
#: (that record on; the first record if it is older), or a
#: ``datetime.datetime`` (the first record stored at or after that time; a
#: naive datetime is local time).
Deliver = Union[str, int, datetime.datetime]


def deliver_fields(deliver: Deliver) -> Tuple[int, int, int]:
    """(policy, start_seq, start_time_ms) of the wire StreamStart for a
    ``deliver`` value, or InvalidRequest."""
    if isinstance(deliver, str):
        if deliver == "all":
            return _DELIVER_ALL, 0, 0
        if deliver == "new":
            return _DELIVER_NEW, 0, 0
        raise InvalidRequest(
            f"deliver = {deliver!r}: use \"all\", \"new\", a sequence number "
            "(int) or a datetime")
    if isinstance(deliver, datetime.datetime):
        ms = round(deliver.timestamp() * 1000)  # naive: local time
        return _DELIVER_FROM_TIME, 0, max(0, ms)
    if isinstance(deliver, int) and not isinstance(deliver, bool):
        if not 0 <= deliver < 1 << 64:
            raise InvalidRequest(f"deliver = {deliver}: a sequence number "
                                 "is 0 or more")
        return _DELIVER_FROM_SEQ, deliver, 0
    raise InvalidRequest(
        f"deliver = {deliver!r}: use \"all\", \"new\", a sequence number "
        "(int) or a datetime")


@dataclasses.dataclass(frozen=True)
class StreamStart:
    """A consumer of a stream: which stream, whether it is durable, and
    where it starts (``subscribe(..., stream=StreamStart(...))``).

    Attributes:
      stream: the stream's name.
      consumer: a durable consumer's name: the broker keeps its
        acknowledged position in its data directory, and it resumes there
        after a reconnect or a broker restart (``deliver`` applies only when
        the broker creates it). ``""``: ephemeral, living as long as the
        subscription.
      deliver: where a new consumer starts (see :data:`Deliver`):
        ``"all"`` (default), ``"new"``, a sequence number, or a datetime.
    """

    stream: str
    consumer: str = ""
    deliver: Deliver = "all"

    def __post_init__(self) -> None:
        # InvalidRequest now, not at send time.
        _args.instance(self.stream, str, "stream", "a stream name (str)")
        _args.instance(self.consumer, str, "consumer",
                       "a consumer name (str; \"\": ephemeral)")
        deliver_fields(self.deliver)
        if not self.stream:
            raise InvalidRequest(
                "stream=\"\": a stream name is 1 to 64 bytes of letters, "
                "digits, '_' and '-'")

    def fill(self, start, resume_after: int = 0) -> None:
        """Writes this into a wire StreamStart. ``resume_after`` > 0 (an
        ephemeral consumer subscribed again after a reconnect): start after
        that sequence number instead."""
        start.stream = _to_bytes(self.stream)
        if self.consumer:
            start.consumer = _to_bytes(self.consumer)
        policy, seq, ms = deliver_fields(self.deliver)
        if resume_after and not self.consumer:
            policy, seq, ms = _DELIVER_FROM_SEQ, resume_after + 1, 0
        if policy:
            start.deliver = policy
        if seq:
            start.start_seq = seq
        if ms:
            start.start_time_ms = ms


def _to_bytes(value: Union[str, bytes], what: str = "name") -> bytes:
    # Not bytes(value): bytes(42) would be 42 zero bytes on the wire.
    return _validate.to_bytes(value, what)


def _seconds_or_none(ms: int) -> Optional[float]:
    return ms / 1000.0 if ms else None


@dataclasses.dataclass(frozen=True)
class StreamConfig:
    """A stream's settings as the broker holds them (defaults filled in).

    Attributes:
      name: 1 to 64 characters of ``[A-Za-z0-9_-]``.
      subjects: topic patterns whose publishes the stream appends.
      max_age: seconds a record is kept; None = unlimited.
      max_bytes, max_msgs: size bounds (of segment files; records);
        None = unlimited. Beyond a bound, records go oldest first.
      fsync: ``"always"``, ``"never"`` or ``"<N>ms"``.
      dedup_window: seconds within which a ``msg_id`` is stored once.
      segment_max_bytes: size at which a segment file is rotated.
      dedup_max_ids: the message ids the stream remembers, at most (the
        oldest is forgotten first, even within dedup_window); None from a
        broker that does not say.
    """

    name: str
    subjects: Tuple[str, ...] = ()
    max_age: Optional[float] = None
    max_bytes: Optional[int] = None
    max_msgs: Optional[int] = None
    fsync: str = "always"
    dedup_window: Optional[float] = None
    segment_max_bytes: Optional[int] = None
    dedup_max_ids: Optional[int] = None

    @classmethod
    def from_wire(cls, c) -> "StreamConfig":
        return cls(name=c.name.decode("utf-8", "replace"),
                   subjects=tuple(s.decode("utf-8", "replace")
                                  for s in c.subjects),
                   max_age=_seconds_or_none(c.max_age_ms),
                   max_bytes=c.max_bytes or None,
                   max_msgs=c.max_msgs or None,
                   fsync=c.fsync or "always",
                   dedup_window=_seconds_or_none(c.dedup_window_ms),
                   segment_max_bytes=c.segment_max_bytes or None,
                   dedup_max_ids=c.dedup_max_ids or None)


@dataclasses.dataclass(frozen=True)
class ConsumerInfo:
    """A durable consumer's state, as the broker reports it.

    Attributes:
      name: its name.
      ack_floor: every record up to this sequence number is acknowledged.
      delivered_seq: the newest record delivered.
      in_flight: records delivered, not yet acknowledged.
      attached: a subscription is consuming it now.
      waiting: records delivered and failed (NACK, ack wait, consumer
        left), waiting to be delivered again.
    """

    name: str
    ack_floor: int = 0
    delivered_seq: int = 0
    in_flight: int = 0
    attached: bool = False
    waiting: int = 0

    @classmethod
    def from_wire(cls, c) -> "ConsumerInfo":
        return cls(name=c.name.decode("utf-8", "replace"),
                   ack_floor=c.ack_floor, delivered_seq=c.delivered_seq,
                   in_flight=c.in_flight, attached=c.attached,
                   waiting=c.waiting)


@dataclasses.dataclass(frozen=True)
class StreamInfo:
    """A stream's settings and state (add_stream(), stream_info(),
    streams()).

    Attributes:
      config: its StreamConfig (``name`` is a shortcut to config.name).
      first_seq: the oldest record's sequence number (last_seq + 1 when
        the stream is empty).
      last_seq: the newest record written (0: none yet).
      durable_seq: the newest record durable per the fsync policy.
      messages: records held.
      bytes: size of its segment files.
      appended: records appended since siftd started.
      fsyncs: fdatasync calls on its segment files since siftd started
        (appended / fsyncs: records one fsync made durable).
      consumers: its durable consumers (ConsumerInfo), in the broker's
        order.
      from_config: defined in siftd's config file (not by a client).
      dedup_ids_forgotten_early: message ids forgotten since siftd started
        because config.dedup_max_ids newer ones came while they were still
        within the dedup window: a republish of one is stored again. Not 0:
        raise dedup_max_ids.
    """

    config: StreamConfig
    first_seq: int = 0
    last_seq: int = 0
    durable_seq: int = 0
    messages: int = 0
    bytes: int = 0
    consumers: Tuple[ConsumerInfo, ...] = ()
    from_config: bool = False
    appended: int = 0
    fsyncs: int = 0
    dedup_ids_forgotten_early: int = 0

    @property
    def name(self) -> str:
        """The stream's name."""
        return self.config.name

    def consumer(self, name: str) -> Optional[ConsumerInfo]:
        """The durable consumer called ``name``, or None."""
        for c in self.consumers:
            if c.name == name:
                return c
        return None

    @classmethod
    def from_wire(cls, info) -> "StreamInfo":
        """The StreamInfo of a wire ``sift.wire.StreamInfo``."""
        return cls(config=StreamConfig.from_wire(info.config),
                   first_seq=info.first_seq, last_seq=info.last_seq,
                   durable_seq=info.durable_seq, messages=info.messages,
                   bytes=info.bytes,
                   consumers=tuple(ConsumerInfo.from_wire(c)
                                   for c in info.consumers),
                   from_config=info.from_config,
                   appended=info.appended, fsyncs=info.fsyncs,
                   dedup_ids_forgotten_early=info.dedup_ids_forgotten_early)


@dataclasses.dataclass(frozen=True)
class PublishAck:
    """What publish_confirmed() was answered.

    Attributes:
      stream_seq: the record's sequence number in the stream that captured
        the topic (answered only once the record is durable per the
        stream's fsync policy); 0 when no stream captures the topic (the
        message was only routed).
      duplicate: True if a record with the same ``msg_id`` was already
        stored within the stream's dedup window: nothing new was stored,
        and stream_seq is the first record's.
    """

    stream_seq: int = 0
    duplicate: bool = False


def stream_start(stream: Union[None, str, StreamStart],
                 consumer: Optional[str], deliver: Optional[Deliver]
                 ) -> Optional[StreamStart]:
    """The StreamStart of subscribe()'s and fetch()'s ``stream``,
    ``consumer`` and ``deliver`` arguments (None: no stream), or
    InvalidRequest."""
    if stream is None:
        if consumer is not None or deliver is not None:
            raise InvalidRequest("consumer and deliver need a stream")
        return None
    if isinstance(stream, StreamStart):
        if consumer is not None or deliver is not None:
            raise InvalidRequest(
                "give consumer and deliver in the StreamStart or as "
                "arguments with a stream name, not both")
        return stream
    if not isinstance(stream, str):
        raise InvalidArgumentType(
            f"stream={_args.show(stream)}: expected a stream name (str), a "
            f"StreamStart or None, got {type(stream).__name__}")
    if consumer is not None and not isinstance(consumer, str):
        raise InvalidArgumentType(
            f"consumer={_args.show(consumer)}: expected a consumer name (str) "
            f"or None, got {type(consumer).__name__}")
    return StreamStart(stream, consumer or "",
                       "all" if deliver is None else deliver)


def _u64_ms(seconds: Optional[float], what: str) -> int:
    if seconds is None:
        return 0
    _args.seconds(seconds, what)
    ms = round(seconds * 1000)
    if seconds > 0 and ms == 0:
        raise InvalidRequest(f"{what} = {seconds} s is under 1 ms")
    if ms >= 1 << 64:
        raise InvalidRequest(f"{what} = {seconds} s is out of range")
    return ms


def _u64(value: Optional[int], what: str) -> int:
    if value is None:
        return 0
    return _args.integer(value, what, 0, (1 << 64) - 1)


#: The most message ids a stream may remember (its ``dedup_max_ids``).
MAX_DEDUP_MAX_IDS = 100_000_000


def stream_config_fields(name: str, subjects, max_age: Optional[float],
                         max_bytes: Optional[int], max_msgs: Optional[int],
                         fsync: Optional[str], dedup_window: Optional[float],
                         segment_max_bytes: Optional[int],
                         dedup_max_ids: Optional[int] = None) -> dict:
    """add_stream()'s arguments as keyword arguments of
    _wire.stream_request (seconds to ms; None to 0, the broker's
    default/unlimited), or InvalidRequest for values that cannot be sent:
    among them dedup_window=0, since over the protocol 0 means the broker's
    default (a stream without dedup is made in siftd's config)."""
    if (isinstance(dedup_window, (int, float))
            and not isinstance(dedup_window, bool) and dedup_window == 0):
        raise InvalidRequest(
            "dedup_window = 0: the protocol's 0 is the broker's default (2 "
            "minutes), so it cannot turn dedup off; a stream without dedup "
            "is made in siftd's config ([[streams]] dedup_window_ms = 0). "
            "None: the default")
    _args.name(name, "name")
    if isinstance(subjects, (str, bytes)):
        subjects = [subjects]
    elif not isinstance(subjects, collections.abc.Iterable):
        raise InvalidArgumentType(
            f"subjects={_args.show(subjects)}: expected a pattern (str) or a "
            f"list of them, got {type(subjects).__name__}")
    subs = [_to_bytes(s, "subjects") for s in subjects]
    if fsync is not None and not isinstance(fsync, str):
        raise InvalidRequest(f"fsync = {fsync!r}: \"always\", \"never\" or "
                             "\"<N>ms\"")
    return dict(name=_to_bytes(name), subjects=subs,
                max_age_ms=_u64_ms(max_age, "max_age"),
                max_bytes=_u64(max_bytes, "max_bytes"),
                max_msgs=_u64(max_msgs, "max_msgs"),
                fsync=fsync or "",
                dedup_window_ms=_u64_ms(dedup_window, "dedup_window"),
                segment_max_bytes=_u64(segment_max_bytes,
                                       "segment_max_bytes"),
                dedup_max_ids=(0 if dedup_max_ids is None else
                               _args.integer(dedup_max_ids, "dedup_max_ids",
                                             1, MAX_DEDUP_MAX_IDS)))
