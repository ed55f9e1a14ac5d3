"""Checks of the arguments of the public calls (Client, AsyncClient, their
subscriptions and messages, the option classes): a wrong type or value fails
at once, in the caller's thread, with an error naming the argument and what
it accepts, instead of later on the wire, in the I/O thread or on a callback
thread.

Wrong types raise InvalidArgumentType (an InvalidRequest that is also a
TypeError); wrong values (negative, NaN, infinite, None where a timeout is
due) raise InvalidRequest (a ValueError). Pure functions; thread-safe.
"""

import math
import numbers
import threading
from typing import Any, Callable, Optional

from .errors import InvalidArgumentType, InvalidRequest

#: The longest wait Python's locks take (about 292 years).
MAX_SECONDS = float(threading.TIMEOUT_MAX)


def show(value: Any) -> str:
    """A short repr of an argument for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_name(value: Any) -> str:
    return type(value).__name__


def is_number(value: Any) -> bool:
    """A real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def seconds(value: Any, what: str) -> float:
    """A duration in seconds: a finite number >= 0 (int or float)."""
    if not is_number(value):
        raise InvalidArgumentType(
            f"{what}={show(value)}: expected a number of seconds (int or "
            f"float), got {_type_name(value)}")
    f = float(value)
    if math.isnan(f):
        raise InvalidRequest(f"{what}=nan: not a number of seconds (give "
                             "a finite number >= 0)")
    if f < 0:
        raise InvalidRequest(f"{what}={value}: a number of seconds cannot "
                             "be negative")
    if f > MAX_SECONDS:
        raise InvalidRequest(
            f"{what}={value}: too long (a finite number of seconds up to "
            f"{MAX_SECONDS:.0f} is expected)")
    return f


def timeout(value: Any, what: str = "timeout") -> float:
    """The timeout of a blocking call: seconds() and never None (every
    blocking call of sift has a timeout)."""
    if value is None:
        raise InvalidRequest(
            f"{what}=None: every blocking call of sift has a timeout; give "
            "a number of seconds (the default is 5.0)")
    return seconds(value, what)


def optional_seconds(value: Any, what: str) -> Optional[float]:
    """None, or seconds()."""
    return None if value is None else seconds(value, what)


def positive_seconds(value: Any, what: str) -> float:
    """seconds(), and more than 0."""
    f = seconds(value, what)
    if f <= 0:
        raise InvalidRequest(f"{what}={value}: must be more than 0 seconds")
    return f


def integer(value: Any, what: str, minimum: int = 0,
            maximum: Optional[int] = None) -> int:
    """An int (or a float with a whole value) within [minimum, maximum]."""
    if isinstance(value, bool) or not (
            isinstance(value, numbers.Integral) or
            (isinstance(value, float) and value.is_integer())):
        raise InvalidArgumentType(
            f"{what}={show(value)}: expected an int, got {_type_name(value)}")
    v = int(value)
    if v < minimum or (maximum is not None and v > maximum):
        bound = (f"{minimum} to {maximum}" if maximum is not None
                 else f"{minimum} or more")
        raise InvalidRequest(f"{what}={value} is out of range ({bound})")
    return v


def boolean(value: Any, what: str) -> bool:
    """True or False (not any truthy value: retain="no" is an error)."""
    if not isinstance(value, bool):
        raise InvalidArgumentType(
            f"{what}={show(value)}: expected True or False, got "
            f"{_type_name(value)}")
    return value


def callback(value: Any, what: str = "callback") -> Optional[Callable]:
    """None or a callable (checked now, not when the first message comes)."""
    if value is not None and not callable(value):
        raise InvalidArgumentType(
            f"{what}={show(value)}: expected a function (or None), got "
            f"{_type_name(value)}, which is not callable")
    return value


def name(value: Any, what: str, optional: bool = False) -> Any:
    """A str or bytes name (None too if ``optional``); returned as is."""
    if optional and value is None:
        return value
    if not isinstance(value, (str, bytes)):
        raise InvalidArgumentType(
            f"{what}={show(value)}: expected str or bytes"
            f"{' (or None)' if optional else ''}, got {_type_name(value)}")
    return value


def instance(value: Any, cls: type, what: str, accepts: str) -> Any:
    """``value`` if it is a ``cls``."""
    if not isinstance(value, cls):
        raise InvalidArgumentType(f"{what}={show(value)}: expected {accepts}, "
                                  f"got {_type_name(value)}")
    return value
