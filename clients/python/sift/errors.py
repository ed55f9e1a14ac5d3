"""sift's exceptions: one class per broker error code (docs/protocol.md §12),
plus the client's own (timeouts, a closed client, full local queues).

Every exception derives from :class:`SiftError`. An error the broker answered
carries its wire code in ``.code`` (an :class:`ErrorCode`); an error the
client found locally before sending anything carries the code the broker
would have answered (e.g. ``InvalidTopic`` for a bad topic), so callers can
program against ``.code`` either way. Errors that have no wire code
(``Timeout``, ``ClientClosed``, ...) have ``.code`` None.

Caller mistakes (bad names, headers, filters) also derive from ValueError,
and :class:`Timeout` from TimeoutError. All of these are plain values: safe
to pass between threads.
"""

import enum
from typing import Dict, Optional, Type, Union


class ErrorCode(enum.IntEnum):
    """The wire ``ErrorCode`` of proto/sift.proto. Numbers never change
    meaning; a newer broker may send codes not listed here (they arrive as
    a plain ``int`` in :attr:`SiftError.code`)."""

    ERROR_CODE_UNSPECIFIED = 0
    BAD_FRAME = 1
    UNKNOWN_COMMAND = 2
    VERSION_MISMATCH = 3
    HELLO_REQUIRED = 4
    INVALID_TOPIC = 5
    INVALID_PATTERN = 6
    INVALID_QUEUE_GROUP = 7
    PAYLOAD_TOO_LARGE = 8
    TOO_MANY_SUBSCRIPTIONS = 9
    DUPLICATE_SID = 10
    UNKNOWN_SID = 11
    FORBIDDEN = 12
    INVALID_REQUEST = 13
    INTERNAL = 14
    TOO_MANY_CLIENTS = 15
    SLOW_CONSUMER = 16
    INVALID_HEADER = 17
    HEADERS_TOO_LARGE = 18
    INVALID_FILTER = 19
    INVALID_PLUGIN = 20
    INVALID_CONFIG = 21
    UNKNOWN_DELIVERY = 22
    STORE_FULL = 23
    QUEUE_FULL = 24
    UNKNOWN_STREAM = 25
    INVALID_STREAM = 26


class SiftError(Exception):
    """Base of every sift exception.

    Attributes:
      code: the broker's ErrorCode for this error (also when the client
        found it locally first), an ``int`` for a code newer than this
        library, or None for errors that have no wire code.
      message: what went wrong, for humans (the broker's text when it
        answered).
    """

    code: Optional[Union[ErrorCode, int]] = None

    def __init__(self, message: str = "",
                 code: Optional[Union[ErrorCode, int]] = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def code_name(self) -> str:
        """The code's name (e.g. ``"INVALID_TOPIC"``), or ``""``."""
        if self.code is None:
            return ""
        try:
            return ErrorCode(self.code).name
        except ValueError:
            pass
        try:  # a code newer than this module, older than the .proto
            from ._pb import pb
            return pb.ErrorCode.Name(int(self.code))
        except (ImportError, ValueError):
            return f"ERROR_CODE_{int(self.code)}"

    def __str__(self) -> str:
        name = self.code_name
        return f"{name}: {self.message}" if name else self.message


# ---- Client-side errors (no wire code) ----

class Timeout(SiftError, TimeoutError):
    """No answer within the call's timeout (connect, confirmed publish,
    subscribe, request, stats, next()). The request may still take effect
    at the broker."""


class NotConnected(SiftError):
    """The client has no session with the broker and will not get one:
    it was created with ``reconnect=False`` and lost its session."""


class ClientClosed(NotConnected):
    """A call on a client after :meth:`close`, or one that was waiting when
    the client closed."""


class PendingLimit(SiftError):
    """Too many messages wait to be sent (the broker is unreachable or too
    slow): more than the client's ``max_pending``. Nothing was queued; try
    again later."""


class MessagesDropped(SiftError):
    """``next()`` reports that messages were dropped at this point of the
    stream because the subscription's local queue was full
    (``queue_max_messages`` / ``queue_max_bytes``). Not an end: call
    ``next()`` again. ``count`` is how many were dropped here."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"{count} message(s) dropped here: the subscription's queue was "
            "full (read faster, or raise queue_max_messages/queue_max_bytes)")
        self.count = count


class SubscriptionClosed(SiftError):
    """``next()`` on a subscription that was unsubscribed, or whose client
    closed, once every message queued before that has been returned."""


class Unsupported(SiftError):
    """The broker does not offer what the call needs (e.g. headers, when its
    WELCOME allows none)."""


class NotAckable(SiftError, ValueError):
    """ack/nack/in_progress of a message from a subscription without
    explicit acks: there is no delivery to acknowledge."""


# ---- Broker error codes (docs/protocol.md §12) ----

class BadFrame(SiftError):
    """BAD_FRAME (1): a malformed frame (a bug in the client's encoding)."""
    code = ErrorCode.BAD_FRAME


class UnknownCommand(SiftError):
    """UNKNOWN_COMMAND (2): the broker does not know the command (too old)."""
    code = ErrorCode.UNKNOWN_COMMAND


class VersionMismatch(SiftError):
    """VERSION_MISMATCH (3): the broker speaks another protocol version."""
    code = ErrorCode.VERSION_MISMATCH


class HelloRequired(NotConnected):
    """HELLO_REQUIRED (4): the broker lost the session (restart, timeout)
    before it executed the request. With ``reconnect=True`` the client
    resends such requests itself after its new HELLO, so this reaches the
    caller only without reconnects."""
    code = ErrorCode.HELLO_REQUIRED


class InvalidTopic(SiftError, ValueError):
    """INVALID_TOPIC (5): a topic or reply_to is not a valid literal topic."""
    code = ErrorCode.INVALID_TOPIC


class InvalidPattern(SiftError, ValueError):
    """INVALID_PATTERN (6): a subscription pattern is not valid."""
    code = ErrorCode.INVALID_PATTERN


class InvalidQueueGroup(SiftError, ValueError):
    """INVALID_QUEUE_GROUP (7): a queue group name is too long or has
    characters outside ``A-Z a-z 0-9 _ - . :``."""
    code = ErrorCode.INVALID_QUEUE_GROUP


class PayloadTooLarge(SiftError):
    """PAYLOAD_TOO_LARGE (8): the payload is over the broker's
    ``max_payload_bytes``."""
    code = ErrorCode.PAYLOAD_TOO_LARGE


class TooManySubscriptions(SiftError):
    """TOO_MANY_SUBSCRIPTIONS (9): the client's or the broker's bound on
    subscriptions is reached."""
    code = ErrorCode.TOO_MANY_SUBSCRIPTIONS


class DuplicateSid(SiftError):
    """DUPLICATE_SID (10): a subscription id used twice (a client bug)."""
    code = ErrorCode.DUPLICATE_SID


class UnknownSid(SiftError):
    """UNKNOWN_SID (11): unsubscribing an id the broker does not hold."""
    code = ErrorCode.UNKNOWN_SID


class Forbidden(SiftError):
    """FORBIDDEN (12): e.g. publishing on a ``$sift.`` topic, subscribing to
    another client's inbox, or a plugin the broker does not allow."""
    code = ErrorCode.FORBIDDEN


class InvalidRequest(SiftError, ValueError):
    """INVALID_REQUEST (13): a field is missing or out of range (e.g. an
    ack option out of range)."""
    code = ErrorCode.INVALID_REQUEST


class InvalidArgumentType(InvalidRequest, TypeError):
    """An argument of a wrong type (e.g. ``subscribe(ack="yes")``,
    ``subscribe(callback=42)``, ``publish(topic=42)``), refused by the
    client before anything is sent or handed to a thread; the message names
    the argument and what it accepts. An InvalidRequest (so a ValueError,
    code INVALID_REQUEST) that is also a TypeError."""


class InternalError(SiftError):
    """INTERNAL (14): a broker-side failure; may be retried with backoff."""
    code = ErrorCode.INTERNAL


class TooManyClients(SiftError):
    """TOO_MANY_CLIENTS (15): the broker holds ``max_clients`` sessions."""
    code = ErrorCode.TOO_MANY_CLIENTS


class SlowConsumer(SiftError):
    """SLOW_CONSUMER (16): a notice, not an answer: the broker dropped
    ``dropped`` deliveries to this client because it did not read fast
    enough. Passed to the client's ``error_callback``, never raised."""
    code = ErrorCode.SLOW_CONSUMER

    def __init__(self, message: str = "", code=None, dropped: int = 0) -> None:
        super().__init__(message, code)
        self.dropped = dropped


class InvalidHeader(SiftError, ValueError):
    """INVALID_HEADER (17): a header key is not 1 to 64 token characters,
    or a header entry is malformed."""
    code = ErrorCode.INVALID_HEADER


class HeadersTooLarge(SiftError):
    """HEADERS_TOO_LARGE (18): more headers, or header bytes, than the
    broker's ``max_headers`` / ``max_headers_bytes``."""
    code = ErrorCode.HEADERS_TOO_LARGE


class InvalidFilter(SiftError, ValueError):
    """INVALID_FILTER (19): a subscription's filter expression does not
    parse (the message gives the position)."""
    code = ErrorCode.INVALID_FILTER


class InvalidPlugin(SiftError, ValueError):
    """INVALID_PLUGIN (20): an unknown plugin, or settings it refused."""
    code = ErrorCode.INVALID_PLUGIN


class InvalidConfig(SiftError):
    """INVALID_CONFIG (21): reload() found the broker's config invalid, or
    the broker has no config file (the old config stays)."""
    code = ErrorCode.INVALID_CONFIG


class UnknownDelivery(SiftError):
    """UNKNOWN_DELIVERY (22): ack/nack/in_progress of a delivery that is not
    in flight for this client (acknowledged already, redelivered since)."""
    code = ErrorCode.UNKNOWN_DELIVERY


class StoreFull(SiftError):
    """STORE_FULL (23): a retained or delayed publish is refused: the broker
    holds its bound of retained values or delayed messages."""
    code = ErrorCode.STORE_FULL


class QueueFull(SiftError):
    """QUEUE_FULL (24): the publish was routed, but a work queue (an
    explicit-ack queue group) it went to already held max_queued messages
    waiting; it was dead-lettered for that queue."""
    code = ErrorCode.QUEUE_FULL


class UnknownStream(SiftError, LookupError):
    """UNKNOWN_STREAM (25): the stream named by fetch(), a stream
    subscription, stream_info(), delete_stream() or delete_consumer() does
    not exist (or, for delete_consumer(), the durable consumer does not)."""
    code = ErrorCode.UNKNOWN_STREAM


class InvalidStream(SiftError, ValueError):
    """INVALID_STREAM (26): add_stream() with bad settings (name, subject
    pattern, limits, fsync), a name already taken with other settings, or
    any stream call to a broker that has streams disabled (siftd without
    ``--data_dir``)."""
    code = ErrorCode.INVALID_STREAM


_BY_CODE: Dict[int, Type[SiftError]] = {
    int(cls.code): cls
    for cls in (BadFrame, UnknownCommand, VersionMismatch, HelloRequired,
                InvalidTopic, InvalidPattern, InvalidQueueGroup,
                PayloadTooLarge, TooManySubscriptions, DuplicateSid,
                UnknownSid, Forbidden, InvalidRequest, InternalError,
                TooManyClients, SlowConsumer, InvalidHeader, HeadersTooLarge,
                InvalidFilter, InvalidPlugin, InvalidConfig, UnknownDelivery,
                StoreFull, QueueFull, UnknownStream, InvalidStream)
}


def error_for_code(code: int, message: str) -> SiftError:
    """The exception for a wire error code: its class, or SiftError with the
    raw code for one this library does not know (ERROR_CODE_UNSPECIFIED
    becomes InternalError, as protocol.md §12 says)."""
    if code == ErrorCode.ERROR_CODE_UNSPECIFIED:
        return InternalError(message or "broker sent ERROR with no code")
    cls = _BY_CODE.get(code)
    if cls is None:
        return SiftError(message, code)
    return cls(message)


def error_class(code: int) -> Type[SiftError]:
    """The exception class for a wire error code (SiftError if unknown)."""
    return _BY_CODE.get(code, SiftError)
