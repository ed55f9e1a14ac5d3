"""A received message, as handed out by subscriptions and request().

A Message is immutable once delivered and may be passed between threads;
its ack(), nack(), in_progress() and respond() are as thread-safe as the
client that received it.
"""

import datetime
from typing import TYPE_CHECKING, Any, List, Optional, Tuple

from .errors import NotAckable, SiftError

if TYPE_CHECKING:  # pragma: no cover
    from ._validate import HeadersArg


class Message:
    """One delivery from the broker (or one reply to a request).

    Attributes:
      topic: the topic it was published on (not the subscription's pattern).
      payload: its bytes, as published.
      reply_to: where the publisher wants replies ("" if none).
      headers: (key, value) pairs as published, in order; keys (str) may
        repeat; values are bytes.
      sid: the subscription it came through.
      delivery_id: explicit-ack subscriptions only: the id the broker knows
        this delivery by (0 otherwise).
      attempt: explicit-ack subscriptions only: 1 for the first delivery,
        more after a NACK, an ack wait that ran out or a worker that left
        (0 otherwise).
      retained: True for a topic's retained value, sent because this
        subscription was just made (not a new publish).
      stream_seq: from a stream (a stream subscription, or fetch()): the
        record's sequence number in its stream (0 for live messages).
      timestamp_ms: from a stream: when the broker stored the record, Unix
        milliseconds (int; 0 for live messages). ``timestamp`` gives it as
        a datetime.
    """

    __slots__ = ("topic", "payload", "reply_to", "headers", "sid",
                 "delivery_id", "attempt", "retained", "stream_seq",
                 "timestamp_ms", "_client", "_epoch")

    def __init__(self, topic: str, payload: bytes, reply_to: str = "",
                 headers: Optional[List[Tuple[str, bytes]]] = None,
                 sid: int = 0, delivery_id: int = 0, attempt: int = 0,
                 retained: bool = False, client: Any = None,
                 stream_seq: int = 0, timestamp_ms: int = 0) -> None:
        self.topic = topic
        self.payload = payload
        self.reply_to = reply_to
        self.headers = headers if headers is not None else []
        self.sid = sid
        self.delivery_id = delivery_id
        self.attempt = attempt
        self.retained = retained
        self.stream_seq = stream_seq
        self.timestamp_ms = timestamp_ms
        self._client = client
        # The session (Session.epoch) it was delivered in, 0 if none: its
        # delivery_id means something to that session only.
        self._epoch = 0

    @property
    def timestamp(self) -> Optional[datetime.datetime]:
        """From a stream: when the broker stored the record, as an aware
        UTC datetime (millisecond precision); None for live messages."""
        if not self.timestamp_ms:
            return None
        return datetime.datetime.fromtimestamp(self.timestamp_ms / 1000.0,
                                               datetime.timezone.utc)

    def header(self, key: str, default: Optional[bytes] = None
               ) -> Optional[bytes]:
        """The value of the first header named ``key`` (case-sensitive), or
        ``default``."""
        for k, v in self.headers:
            if k == key:
                return v
        return default

    def header_values(self, key: str) -> List[bytes]:
        """Every value of the headers named ``key``, in order."""
        return [v for k, v in self.headers if k == key]

    @property
    def text(self) -> str:
        """The payload decoded as UTF-8 (errors replaced)."""
        return self.payload.decode("utf-8", "replace")

    def _ackable(self):
        if not self.delivery_id:
            raise NotAckable(
                "this message came from a subscription (or fetch) without "
                "explicit acks (ack=...): there is nothing to acknowledge")
        if self._client is None:
            raise NotAckable("this message has no client to answer through")
        return self._client

    def ack(self, timeout: Optional[float] = None) -> None:
        """Acknowledges this delivery: done, the broker forgets it.

        Args:
          timeout: None (default): fire-and-forget, returns at once; an
            id the broker no longer holds is reported to the client's
            error_callback and log. A number of seconds: wait for the
            broker's answer that long (for a durable stream consumer, the
            broker answers once the new position is on disk).
        Raises:
          NotAckable: not from an explicit-ack subscription or fetch.
          UnknownDelivery: (with a timeout) the delivery is not in flight
            any more (acknowledged already, or redelivered since); at once,
            whatever the timeout, if it came in an earlier session (the
            broker restarted or the connection was lost since: its id
            belongs to that session), or in the last one once that has
            ended (the connection was lost, no new session yet); an ack
            still queued then fails then too, not at its timeout.
          NotConnected: (with a timeout) the ack was sent but the
            connection was lost before the broker answered, raised as soon
            as the client sees it drop: it may or may not have been applied
            (if not, the delivery comes again).
          Timeout, ClientClosed, PendingLimit.
        """
        self._ackable().ack(self, timeout=timeout)

    def nack(self, delay: float = 0.0,
             timeout: Optional[float] = None) -> None:
        """Refuses this delivery: the broker redelivers it after ``delay``
        seconds (0: the subscription's backoff for this attempt), to another
        queue-group member when there is one. Same errors as ack()."""
        self._ackable().nack(self, delay=delay, timeout=timeout)

    def in_progress(self, timeout: Optional[float] = None) -> None:
        """Work on this delivery goes on: the broker restarts its ack wait.
        Call it more often than the subscription's ack_wait. Same errors as
        ack()."""
        self._ackable().in_progress(self, timeout=timeout)

    def respond(self, payload: Any = b"", *, headers: "HeadersArg" = None
                ) -> None:
        """Publishes ``payload`` to this message's reply_to (fire-and-forget).
        Raises SiftError if it has no reply_to; else as Client.publish()."""
        if not self.reply_to:
            raise SiftError("this message has no reply_to to respond to")
        if self._client is None:
            raise SiftError("this message has no client to answer through")
        self._client.publish(self.reply_to, payload, headers=headers)

    def __repr__(self) -> str:
        extra = ""
        if self.delivery_id:
            extra = f" delivery_id={self.delivery_id} attempt={self.attempt}"
        if self.retained:
            extra += " retained"
        if self.stream_seq:
            extra += f" stream_seq={self.stream_seq}"
        return (f"<sift.Message topic={self.topic!r} "
                f"payload={self.payload[:40]!r}"
                f"{'...' if len(self.payload) > 40 else ''}"
                f"{f' reply_to={self.reply_to!r}' if self.reply_to else ''}"
                f"{f' headers={len(self.headers)}' if self.headers else ''}"
                f"{extra}>")


class AsyncMessage(Message):
    """A Message from an AsyncClient: ack(), nack(), in_progress() and
    respond() are coroutines (same arguments and errors as Message's)."""

    __slots__ = ()

    async def ack(self, timeout: Optional[float] = None) -> None:  # type: ignore[override]
        """See Message.ack()."""
        await self._ackable().ack(self, timeout=timeout)

    async def nack(self, delay: float = 0.0,  # type: ignore[override]
                   timeout: Optional[float] = None) -> None:
        """See Message.nack()."""
        await self._ackable().nack(self, delay=delay, timeout=timeout)

    async def in_progress(self,  # type: ignore[override]
                          timeout: Optional[float] = None) -> None:
        """See Message.in_progress()."""
        await self._ackable().in_progress(self, timeout=timeout)

    async def respond(self, payload: Any = b"", *,  # type: ignore[override]
                      headers: "HeadersArg" = None) -> None:
        """See Message.respond()."""
        if not self.reply_to:
            raise SiftError("this message has no reply_to to respond to")
        if self._client is None:
            raise SiftError("this message has no client to answer through")
        await self._client.publish(self.reply_to, payload, headers=headers)
