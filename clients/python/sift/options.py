"""Options of subscriptions (explicit acks, plugins) and the broker's limits.

Plain immutable values: safe to share between threads.
"""

import dataclasses
from typing import Iterable, Mapping, Optional, Sequence, Tuple, Union

from .errors import InvalidRequest


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


def _u32(value: int, what: str) -> int:
    v = int(value)
    if not 0 <= v <= 0xFFFFFFFF:
        raise InvalidRequest(f"{what} = {value} is out of range (0 to "
                             "4294967295)")
    return v


def seconds_to_ms(seconds: float, what: str) -> int:
    """Seconds (float) to whole milliseconds for the wire, rounded; an
    InvalidRequest if negative or beyond 32 bits of milliseconds."""
    if seconds < 0:
        raise InvalidRequest(f"{what} = {seconds} s is negative")
    return _u32(round(seconds * 1000), what + " (ms)")


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

    def setting_pairs(self):
        """The settings as a list of (key, value) pairs, in order."""
        s = self.settings
        return list(s.items()) if isinstance(s, Mapping) else list(s)


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
