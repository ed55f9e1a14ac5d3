"""The frames of one PUB, checked locally first (docs/protocol.md §5, §8):
shared by Client and AsyncClient. Pure functions; thread-safe."""

import datetime
import math
import time
from typing import List, Mapping, Optional, Tuple, Union

from . import _args, _validate, _wire
from ._validate import HeadersArg, Name
from .errors import InvalidArgumentType, InvalidRequest, Unsupported
from .options import MSG_ID_HEADER, Limits

Payload = Union[bytes, bytearray, memoryview, str]
When = Union[float, int, datetime.datetime]


def later(limits: Limits, retain: bool, delay: Optional[float],
          deliver_at: Optional[When]) -> Tuple[int, int]:
    """(delay_ms, deliver_at_ms) for a PUB (§8.2), or InvalidRequest /
    Unsupported for what the broker would refuse or ignore (and
    InvalidRequest / InvalidArgumentType for a delay or time that is not a
    finite number, or negative)."""
    _args.boolean(retain, "retain")
    if delay is not None:
        _args.seconds(delay, "delay")
    if deliver_at is not None and not isinstance(deliver_at,
                                                 datetime.datetime):
        if not _args.is_number(deliver_at):
            raise InvalidArgumentType(
                f"deliver_at={_args.show(deliver_at)}: expected Unix seconds "
                "(int or float) or a datetime, got "
                f"{type(deliver_at).__name__}")
        if not math.isfinite(deliver_at):
            raise InvalidRequest(f"deliver_at={deliver_at}: not a time "
                                 "(give Unix seconds or a datetime)")
    if delay is None and deliver_at is None:
        return 0, 0
    if delay is not None and deliver_at is not None:
        raise InvalidRequest("give delay or deliver_at, not both")
    if retain:
        raise InvalidRequest("a delayed publish cannot be retained")
    if limits.max_delay_ms == 0:
        raise Unsupported("the broker holds no delayed messages (its WELCOME "
                          "has no max_delay_ms: it predates them)")
    if delay is not None:
        delay_ms = round(delay * 1000)
        if delay_ms > limits.max_delay_ms:
            raise InvalidRequest(
                f"delay of {delay_ms} ms exceeds the broker's max_delay_ms "
                f"({limits.max_delay_ms})")
        return delay_ms, 0
    if isinstance(deliver_at, datetime.datetime):
        at = deliver_at.timestamp()  # naive: local time
    else:
        at = float(deliver_at)  # type: ignore[arg-type]
    at_ms = max(1, round(at * 1000))  # a time past is due at once
    ahead = at_ms - time.time() * 1000
    if ahead > limits.max_delay_ms:
        raise InvalidRequest(
            f"deliver_at is {ahead / 1000:.0f} s ahead, beyond the broker's "
            f"max_delay_ms ({limits.max_delay_ms})")
    return 0, at_ms


def frames(limits: Limits, topic: Name, payload: Payload,
           headers: HeadersArg, reply_to: Optional[Name], rid: int,
           confirm: bool, retain: bool = False,
           delay: Optional[float] = None,
           deliver_at: Optional[When] = None,
           msg_id: Optional[Name] = None) -> List[bytes]:
    """[frame 0, payload] of a PUB, or the error the broker would answer.
    A ``msg_id`` is sent as the header ``sift-msg-id``, after ``headers``."""
    t = _validate.publish_topic(topic, limits.max_topic_length,
                                limits.max_topic_tokens)
    _args.name(reply_to, "reply_to", optional=True)
    _args.name(msg_id, "msg_id", optional=True)
    r = (_validate.topic(reply_to, limits.max_topic_length,
                         limits.max_topic_tokens, "reply_to")
         if reply_to else b"")
    p = _validate.payload(payload, limits.max_payload_bytes)
    if msg_id is not None:
        if not msg_id:
            raise InvalidRequest("msg_id is empty (None: no message id)")
        if isinstance(headers, Mapping):
            headers = list(headers.items())
        headers = list(headers or ()) + [(MSG_ID_HEADER, msg_id)]
    hs = _validate.headers(headers, limits.max_headers,
                           limits.max_headers_bytes)
    delay_ms, at_ms = later(limits, retain, delay, deliver_at)
    return [_wire.pub(rid, t, r, confirm, hs, retain, delay_ms, at_ms), p]
