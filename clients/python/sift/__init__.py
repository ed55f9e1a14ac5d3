"""sift: the Python client of the sift pub/sub broker (docs/python.md).

    import sift

    with sift.Client("tcp://127.0.0.1:7440") as client:
        sub = client.subscribe("orders.>")
        client.publish("orders.eu.created", b"{...}", headers={"region": "eu"})
        msg = sub.next(timeout=1.0)

``sift.Client`` is blocking and thread-safe; ``sift.AsyncClient`` is its
asyncio twin (zmq.asyncio). Both speak docs/protocol.md and nothing else.
Needs Debian's python3-zmq and python3-protobuf, and the module protoc
generates from proto/sift.proto (see sift._pb for where it is looked for).
"""

import sys as _sys

try:
    from ._pb import pb as wire  # noqa: F401  (the generated sift_pb2 module)
except ImportError as _e:
    if _sys.argv[:1] == ["-m"]:  # python3 -m sift: a message, no traceback
        print(f"python3 -m sift: {_e}", file=_sys.stderr)
        raise SystemExit(2)
    raise
from .aio import AsyncClient, AsyncSubscription
from .client import DEFAULT_ENDPOINT, Client, Subscription
from .errors import (BadFrame, ClientClosed, DuplicateSid, ErrorCode,
                     Forbidden, HeadersTooLarge, HelloRequired, InternalError,
                     InvalidArgumentType, InvalidConfig, InvalidFilter,
                     InvalidHeader,
                     InvalidPattern, InvalidPlugin, InvalidQueueGroup,
                     InvalidRequest, InvalidTopic, MessagesDropped,
                     NotAckable, NotConnected, PayloadTooLarge, PendingLimit,
                     InvalidStream, QueueFull, SiftError, SlowConsumer,
                     StoreFull, SubscriptionClosed, Timeout,
                     TooManyClients, TooManySubscriptions, UnknownCommand,
                     UnknownDelivery, UnknownSid, UnknownStream, Unsupported,
                     VersionMismatch, error_class)
from .message import AsyncMessage, Message
from .options import (MSG_ID_HEADER, AckOptions, ConsumerInfo, Limits,
                      PluginSpec, PublishAck, SlowConsumerOptions,
                      StreamConfig, StreamInfo, StreamStart)

__version__ = "0.1.0"

__all__ = [
    "AckOptions", "AsyncClient", "AsyncMessage", "AsyncSubscription",
    "BadFrame", "Client", "ClientClosed", "DEFAULT_ENDPOINT", "DuplicateSid",
    "ErrorCode", "Forbidden", "HeadersTooLarge", "HelloRequired",
    "InternalError", "InvalidArgumentType", "InvalidConfig", "InvalidFilter",
    "InvalidHeader",
    "InvalidPattern", "InvalidPlugin", "InvalidQueueGroup", "InvalidRequest",
    "InvalidStream", "InvalidTopic", "Limits", "MSG_ID_HEADER",
    "ConsumerInfo", "PublishAck", "StreamConfig", "StreamInfo",
    "StreamStart", "Message", "MessagesDropped", "NotAckable",
    "NotConnected", "PayloadTooLarge", "PendingLimit", "PluginSpec",
    "QueueFull",
    "SiftError", "SlowConsumer", "SlowConsumerOptions", "StoreFull",
    "Subscription", "SubscriptionClosed",
    "Timeout", "TooManyClients", "TooManySubscriptions", "UnknownCommand",
    "UnknownDelivery", "UnknownSid", "UnknownStream", "Unsupported", "VersionMismatch",
    "error_class", "wire",
]
