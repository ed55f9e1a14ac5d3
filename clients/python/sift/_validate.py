"""Local checks with the broker's rules (docs/protocol.md §5, §6, §8.1), so a
caller gets its error at once, with the code the broker would answer.

Names arrive as str or bytes and leave as bytes. Pure functions; thread-safe.
"""

import collections.abc
import re
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from ._args import show
from .errors import (Forbidden, HeadersTooLarge, InvalidArgumentType,
                     InvalidHeader, InvalidPattern, InvalidQueueGroup,
                     InvalidRequest, InvalidTopic, PayloadTooLarge,
                     Unsupported)

#: Tokens per topic or pattern the broker accepts whatever its settings.
HARD_MAX_TOKENS = 64
#: Longest queue group name, in bytes.
MAX_QUEUE_GROUP_BYTES = 64
#: Longest header key, in bytes.
MAX_HEADER_KEY_BYTES = 64
#: Longest client name, in bytes.
MAX_CLIENT_NAME_BYTES = 256

# A whole literal topic: tokens of 0x21-0x7E other than . * >, single dots.
_TOPIC_RE = re.compile(rb"[\x21-\x29\x2b-\x2d\x2f-\x3d\x3f-\x7e]+"
                       rb"(?:\.[\x21-\x29\x2b-\x2d\x2f-\x3d\x3f-\x7e]+)*")
_TOKEN_CHAR = re.compile(rb"[\x21-\x7e]")
_GROUP_RE = re.compile(rb"[A-Za-z0-9_\-.:]*")
_HEADER_KEY_RE = re.compile(rb"[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,64}")

Name = Union[str, bytes]
HeaderValue = Union[str, bytes, bytearray, memoryview]
HeadersArg = Optional[Union[Mapping[Name, HeaderValue],
                            Iterable[Tuple[Name, HeaderValue]]]]


def to_bytes(value: Union[str, bytes, bytearray, memoryview],
             what: str = "") -> bytes:
    """str as UTF-8; bytes-like as is. Anything else: InvalidArgumentType
    (a TypeError) naming ``what``, the argument. A str holding bytes that
    were not UTF-8, as Python decodes them from the command line or file
    names (surrogateescape: b"caf\\xe9" is "caf\\udce9"), is sent as those
    bytes, for the broker to judge; any other lone surrogate cannot be sent:
    InvalidRequest."""
    if isinstance(value, str):
        try:
            return value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError as e:
            where = f"{what}={show(value)}: " if what else ""
            raise InvalidRequest(
                f"{where}not encodable as UTF-8 (a lone surrogate at "
                f"position {e.start}); pass bytes") from None
    if isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    where = f"{what}={show(value)}: " if what else ""
    raise InvalidArgumentType(f"{where}expected str or bytes, got "
                              f"{type(value).__name__}")


def _quote(b: bytes) -> str:
    """As the broker quotes a topic in its errors (broker/topic/topic.cc):
    at most 80 bytes, '"' and '\\' backslash-escaped, other bytes outside
    printable ASCII as \\xHH (uppercase), "..." after a cut."""
    out = []
    for c in b[:80]:
        if c in (0x22, 0x5C):
            out.append("\\" + chr(c))
        elif 0x20 <= c <= 0x7E:
            out.append(chr(c))
        else:
            out.append(f"\\x{c:02X}")
    return '"' + "".join(out) + '"' + ("..." if len(b) > 80 else "")


def _describe_byte(c: int) -> str:
    if 0x20 <= c <= 0x7E:
        return f"character '{chr(c)}' (0x{c:02X})"
    return f"byte 0x{c:02X}"


def _check_name(b: bytes, what: str, pattern: bool, max_length: int,
                max_tokens: int, error) -> None:
    """The slow path: finds what is wrong with a name the fast path refused
    (or checks a pattern)."""
    if not b or len(b) > max_length:
        if not b:
            raise error(f"invalid {what} {_quote(b)}: empty (must be 1 to "
                        f"{max_length} bytes)")
        raise error(f"invalid {what} {_quote(b)}: {len(b)} bytes exceeds "
                    f"the limit of {max_length}")
    max_tokens = min(max_tokens, HARD_MAX_TOKENS)
    tokens = b.split(b".")
    for position, token in enumerate(tokens, 1):
        if not token:
            raise error(f"invalid {what} {_quote(b)}: empty token at "
                        f"position {position} (tokens are separated by "
                        "single dots)")
    if len(tokens) > max_tokens:
        raise error(f"invalid {what} {_quote(b)}: {len(tokens)} tokens "
                    f"exceeds the limit of {max_tokens}")
    offset = 0
    for position, token in enumerate(tokens, 1):
        for i, c in enumerate(token):
            if c < 0x21 or c > 0x7E:
                raise error(f"invalid {what} {_quote(b)}: "
                            f"{_describe_byte(c)} at offset {offset + i} is "
                            "not allowed")
            if c in (0x2A, 0x3E):  # * >
                if not pattern:
                    raise error(
                        f"invalid topic {_quote(b)}: wildcards are only "
                        f"allowed in subscription patterns ('{chr(c)}' at "
                        f"offset {offset + i})")
                if len(token) != 1:
                    raise error(
                        f"invalid pattern {_quote(b)}: '{chr(c)}' must be a "
                        f"whole token, but token {position} is "
                        f"{_quote(token)}")
                if c == 0x3E and position != len(tokens):
                    raise error(
                        f"invalid pattern {_quote(b)}: '>' must be the last "
                        f"token (found at position {position} of "
                        f"{len(tokens)})")
        offset += len(token) + 1


def topic(name: Name, max_length: int, max_tokens: int,
          what: str = "topic") -> bytes:
    """A literal topic as bytes, or InvalidTopic saying what is wrong."""
    b = to_bytes(name, what)
    if (0 < len(b) <= max_length and _TOPIC_RE.fullmatch(b)
            and b.count(b".") < min(max_tokens, HARD_MAX_TOKENS)):
        return b
    _check_name(b, "topic", False, max_length, max_tokens,
                lambda m: InvalidTopic(m if what == "topic"
                                       else f"{what}: {m}"))
    return b


def publish_topic(name: Name, max_length: int, max_tokens: int) -> bytes:
    """A PUB topic: a literal topic not under ``$sift`` (the broker's)."""
    b = topic(name, max_length, max_tokens)
    if b == b"$sift" or b.startswith(b"$sift."):
        raise Forbidden(
            f"topics under \"$sift.\" are the broker's (dead letters): "
            f"subscribe to them, do not publish on them ({_quote(b)})")
    return b


def pattern(name: Name, max_length: int, max_tokens: int) -> bytes:
    """A subscription pattern as bytes, or InvalidPattern."""
    b = to_bytes(name, "pattern")
    _check_name(b, "pattern", True, max_length, max_tokens, InvalidPattern)
    return b


def queue_group(name: Optional[Name]) -> bytes:
    """A queue group as bytes (empty: none), or InvalidQueueGroup."""
    if name is None:
        return b""
    b = to_bytes(name, "queue_group")
    if not b:
        return b""
    if len(b) > MAX_QUEUE_GROUP_BYTES:
        raise InvalidQueueGroup(
            f"invalid queue group {_quote(b)}: {len(b)} bytes exceeds the "
            f"limit of {MAX_QUEUE_GROUP_BYTES}")
    if not _GROUP_RE.fullmatch(b):
        for i, c in enumerate(b):
            if not _GROUP_RE.fullmatch(bytes([c])):
                raise InvalidQueueGroup(
                    f"invalid queue group {_quote(b)}: {_describe_byte(c)} "
                    f"at offset {i} is not allowed (use A-Z, a-z, 0-9, '_', "
                    "'-', '.', ':')")
    return b


def payload(data: Union[str, bytes, bytearray, memoryview],
            max_bytes: int) -> bytes:
    """The payload as bytes, or PayloadTooLarge."""
    b = to_bytes(data, "payload")
    if len(b) > max_bytes:
        raise PayloadTooLarge(
            f"payload of {len(b)} bytes exceeds the broker's "
            f"max_payload_bytes ({max_bytes})")
    return b


def header_key(key: Name) -> bytes:
    """A header key as bytes, or InvalidHeader."""
    b = to_bytes(key, "header key")
    if not _HEADER_KEY_RE.fullmatch(b):
        raise InvalidHeader(
            f"header key {_quote(b)} is not 1 to {MAX_HEADER_KEY_BYTES} "
            "token characters (A-Z a-z 0-9 ! # $ % & ' * + - . ^ _ ` | ~)")
    return b


def headers(pairs: HeadersArg, max_count: int,
            max_bytes: int) -> List[Tuple[bytes, bytes]]:
    """Headers as a list of (key, value) bytes, in order, checked against
    the broker's limits: InvalidHeader, HeadersTooLarge, or Unsupported
    when the broker takes none (max_headers 0)."""
    if pairs is None:
        return []
    if isinstance(pairs, Mapping):
        items: Sequence = list(pairs.items())
    elif isinstance(pairs, (str, bytes, bytearray, memoryview)) or \
            not isinstance(pairs, collections.abc.Iterable):
        raise InvalidArgumentType(
            f"headers={show(pairs)}: expected a dict or a list of (key, "
            f"value) pairs, got {type(pairs).__name__}")
    else:
        items = list(pairs)
    if not items:
        return []
    if max_count == 0:
        raise Unsupported(
            "the broker takes no message headers (its WELCOME allows 0: "
            "max_headers is 0, or it predates headers)")
    out = []
    total = 0
    for position, item in enumerate(items, 1):
        try:
            key, value = item
        except (TypeError, ValueError):
            raise InvalidHeader(
                f"header {position} is not a (key, value) pair") from None
        try:
            k = header_key(key)
        except InvalidHeader as e:
            raise InvalidHeader(f"header {position}: {e.message}") from None
        v = to_bytes(value, f"headers[{k.decode('latin-1')!r}]")
        total += len(k) + len(v)
        out.append((k, v))
    if len(out) > max_count:
        raise HeadersTooLarge(f"{len(out)} headers exceeds the broker's "
                              f"max_headers ({max_count})")
    if total > max_bytes:
        raise HeadersTooLarge(
            f"{total} bytes of header keys and values exceeds the broker's "
            f"max_headers_bytes ({max_bytes})")
    return out
