"""Bounded per-subscription message queues, blocking (threads) and asyncio.

A queue holds at most ``max_messages`` messages and ``max_bytes`` payload
bytes (0: no bound of that kind). A message that would not fit is dropped:
the newest, never one already queued (as nats clients' pending limits). The
drops of one run are reported once, at their place in the stream, by
pop() raising MessagesDropped; ``dropped`` counts them all.

SyncQueue is thread-safe (one producer, the client's I/O thread; any
consumers). AsyncQueue belongs to one event loop and is not thread-safe.
"""

import asyncio
import collections
import threading
import time
from typing import Callable, Deque, Optional, Union

from .errors import MessagesDropped, SiftError, SubscriptionClosed, Timeout
from .message import Message


class _Drops:
    """A run of consecutive drops, at its place in the queue."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 1


Item = Union[Message, _Drops]


class _Bounds:
    """The accounting both queue kinds share. Not thread-safe by itself."""

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.items: Deque[Item] = collections.deque()
        self.count = 0
        self.bytes = 0
        self.dropped = 0
        self.closed = False
        self.close_exc: Optional[SiftError] = None

    def add(self, msg: Message) -> bool:
        """Queues msg, or records a drop. True if an item was appended (the
        message, or the marker of a new run of drops)."""
        if self.closed:
            return False
        size = len(msg.payload)
        if ((self.max_messages and self.count >= self.max_messages) or
                (self.max_bytes and self.bytes + size > self.max_bytes)):
            self.dropped += 1
            last = self.items[-1] if self.items else None
            if isinstance(last, _Drops):
                last.count += 1
                return False
            self.items.append(_Drops())
            return True
        self.items.append(msg)
        self.count += 1
        self.bytes += size
        return True

    def take(self) -> Message:
        """The next item. REQUIRES: items not empty."""
        item = self.items.popleft()
        if isinstance(item, _Drops):
            raise MessagesDropped(item.count)
        self.count -= 1
        self.bytes -= len(item.payload)
        return item

    def closed_error(self) -> SiftError:
        if self.close_exc is not None:
            return self.close_exc
        return SubscriptionClosed("the subscription is closed "
                                  "(unsubscribed, or its client closed)")


class SyncQueue:
    """Blocking queue for Subscription.next(). Thread-safe."""

    def __init__(self, max_messages: int, max_bytes: int,
                 on_push: Optional[Callable[[], None]] = None) -> None:
        self._b = _Bounds(max_messages, max_bytes)
        self._cond = threading.Condition(threading.Lock())
        # Called once per item appended, and on close (callback subs).
        self.on_push = on_push

    @property
    def dropped(self) -> int:
        return self._b.dropped

    def push(self, msg: Message) -> None:
        with self._cond:
            if not self._b.add(msg):
                return
            self._cond.notify()
        if self.on_push is not None:
            self.on_push()

    def pop(self, timeout: Optional[float]) -> Message:
        """The next message, waiting up to ``timeout`` seconds (None: until
        one comes or the queue closes). Raises Timeout, MessagesDropped,
        SubscriptionClosed (or the error that closed it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._b.items:
                if self._b.closed:
                    raise self._b.closed_error()
                if deadline is None:
                    self._cond.wait()
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Timeout(f"no message within {timeout} s")
                self._cond.wait(remaining)
            return self._b.take()

    def pop_nowait(self) -> Optional[Message]:
        """The next message, or None if empty. Raises MessagesDropped."""
        with self._cond:
            if not self._b.items:
                return None
            return self._b.take()

    def close(self, exc: Optional[SiftError] = None) -> None:
        with self._cond:
            if self._b.closed:
                return
            self._b.closed = True
            self._b.close_exc = exc
            self._cond.notify_all()
        if self.on_push is not None:
            self.on_push()

    @property
    def closed(self) -> bool:
        return self._b.closed


class AsyncQueue:
    """Queue for AsyncSubscription.next() and ``async for``. Belongs to one
    event loop; not thread-safe."""

    def __init__(self, max_messages: int, max_bytes: int,
                 on_push: Optional[Callable[[], None]] = None) -> None:
        self._b = _Bounds(max_messages, max_bytes)
        self._waiters: Deque[asyncio.Future] = collections.deque()
        self.on_push = on_push

    @property
    def dropped(self) -> int:
        return self._b.dropped

    def _wake_one(self) -> None:
        while self._waiters:
            w = self._waiters.popleft()
            if not w.done():
                w.set_result(None)
                return

    def push(self, msg: Message) -> None:
        if not self._b.add(msg):
            return
        self._wake_one()
        if self.on_push is not None:
            self.on_push()

    async def pop(self, timeout: Optional[float]) -> Message:
        """As SyncQueue.pop(), awaiting."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not self._b.items:
            if self._b.closed:
                raise self._b.closed_error()
            w = loop.create_future()
            self._waiters.append(w)
            try:
                if deadline is None:
                    await w
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise Timeout(f"no message within {timeout} s")
                    try:
                        await asyncio.wait_for(w, remaining)
                    except asyncio.TimeoutError:
                        raise Timeout(
                            f"no message within {timeout} s") from None
            except asyncio.CancelledError:
                if w.done() and not w.cancelled() and self._b.items:
                    # Woken for a message, then cancelled before taking
                    # it: another waiter takes it, or it would wait for
                    # the next push.
                    self._wake_one()
                raise
            finally:
                if not w.done():
                    w.cancel()
        return self._b.take()

    def pop_nowait(self) -> Optional[Message]:
        if not self._b.items:
            return None
        return self._b.take()

    def close(self, exc: Optional[SiftError] = None) -> None:
        if self._b.closed:
            return
        self._b.closed = True
        self._b.close_exc = exc
        for w in self._waiters:
            if not w.done():
                w.set_result(None)
        self._waiters.clear()
        if self.on_push is not None:
            self.on_push()

    @property
    def closed(self) -> bool:
        return self._b.closed

    def has_items(self) -> bool:
        return bool(self._b.items)
