"""The asyncio sift client (zmq.asyncio): the blocking Client's API as
coroutines (docs/python.md, "asyncio").

Threads: an AsyncClient belongs to the event loop it connected on and is not
thread-safe: call it from coroutines and callbacks of that loop only (from
another thread, use asyncio.run_coroutine_threadsafe). Its work runs in
tasks of that loop: one reads the socket, one keeps time (PINGs, HELLO
retries), one watches the connection; sends go straight to the socket.
Each callback subscription has a task of its own ("sift-cb-<sid>") that runs
its callback (a plain function or a coroutine function) one message at a
time, in arrival order, so a callback may await anything on the client
(request, publish_confirmed), even one answered by another callback of the
same client. Every awaitable call has a timeout.
"""

import asyncio
import inspect
import logging
import time
from typing import (Any, AsyncIterator, Awaitable, Callable, List, Optional,
                    Sequence, Union)

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from . import _args, _publish, _validate, _wire
from ._queue import AsyncQueue
from ._session import (ACK, BATCH_PAYLOAD_LIMIT, CONFIRM, RELOAD, STATS,
                       STREAM, SUB, UNSUB, Session, SubState)
from ._publish import When
from ._validate import HeadersArg, Name
from .client import (DEFAULT_ENDPOINT, _SubscriptionBase, _fetch_args,
                     _publish_ack, check_endpoint, check_message, check_options,
                     configure_socket, declare_frame, no_answer,
                     request_timeout_message, sub_args)
from .errors import (ClientClosed, MessagesDropped, NotConnected, PendingLimit,
                     SiftError, SubscriptionClosed, Timeout, UnknownStream)
from .message import AsyncMessage, Message
from .options import (AckOptions, Deliver, Limits, PluginSpec, PublishAck,
                      SlowConsumerOptions, StreamInfo, StreamStart,
                      seconds_to_ms, stream_config_fields)

log = logging.getLogger("sift")

Payload = Union[bytes, bytearray, memoryview, str]
AsyncMessageCallback = Callable[[AsyncMessage], Union[None, Awaitable[Any]]]
AsyncErrorCallback = Callable[[SiftError], Union[None, Awaitable[Any]]]


class _AsyncSession(Session):
    """The session with the AsyncClient's hooks; runs on its loop."""

    def __init__(self, client: "AsyncClient", **kw: Any) -> None:
        super().__init__(**kw)
        self._client = client

    def _resolve(self, waiter, value) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_result(value)

    def _fail(self, waiter, exc) -> None:
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _deliver(self, sub: SubState, message: Message) -> None:
        sub.sink.push(message)

    def _close_sink(self, sub: SubState, exc) -> None:
        if sub.sink is not None:
            sub.sink.close(exc)

    def _report(self, exc: SiftError) -> None:
        self._client._report(exc)

    def _make_message(self, **fields: Any) -> Message:
        return AsyncMessage(client=self._client, **fields)


class AsyncSubscription(_SubscriptionBase):
    """A live subscription of an AsyncClient: ``await sub.next(timeout)``,
    ``async for msg in sub``, or a callback. Use ``async with`` or
    ``await sub.unsubscribe()`` to stop it. Not thread-safe."""

    async def next(self, timeout: Optional[float] = None) -> AsyncMessage:
        """The next message, waiting up to ``timeout`` seconds (None: until
        one comes or the subscription closes). Raises Timeout,
        MessagesDropped (once per run of drops; call again),
        SubscriptionClosed, or the error that ended the subscription."""
        self._check_pull()
        return await self._queue.pop(  # type: ignore[return-value]
            _args.optional_seconds(timeout, "timeout"))

    def __aiter__(self) -> AsyncIterator[AsyncMessage]:
        """``async for msg in sub``: messages until the subscription closes;
        drops (queue full) are logged and counted, not raised."""
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[AsyncMessage]:
        while True:
            try:
                yield await self.next()
            except MessagesDropped as e:
                log.warning("sift: subscription %d (%s): %s", self.sid,
                            self.pattern, e)
            except SubscriptionClosed:
                return

    async def unsubscribe(self, timeout: float = 5.0) -> None:
        """Stops deliveries at once, then waits up to ``timeout`` seconds
        for the broker's answer. Idempotent. Raises Timeout."""
        _args.timeout(timeout)
        if not self._active:
            return
        self._active = False
        await self._client._unsubscribe(self._state.sid, timeout)

    async def __aenter__(self) -> "AsyncSubscription":
        """``async with``: unsubscribes on exit."""
        return self

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.unsubscribe()
        except SiftError as e:
            log.debug("sift: unsubscribe on exit: %s", e)

    def __repr__(self) -> str:
        return (f"<sift.AsyncSubscription sid={self.sid} "
                f"pattern={self.pattern!r}>")


class AsyncClient:
    """A connection to a sift broker for asyncio programs.

    ``client = await AsyncClient.connect(endpoint, ...)``, or
    ``async with AsyncClient(endpoint, ...) as client:`` (connects on
    entry, closes on exit). The options and errors are those of
    :class:`sift.Client`; callbacks (``callback``, ``error_callback``) may
    be coroutine functions.
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, *, name: str = "",
                 connect_timeout: float = 5.0, reconnect: bool = True,
                 ping_interval: float = 5.0, max_pending: int = 100000,
                 queue_max_messages: int = 65536,
                 queue_max_bytes: int = 64 << 20,
                 accepts_batches: bool = True,
                 error_callback: Optional[AsyncErrorCallback] = None,
                 context: Optional["zmq.Context"] = None) -> None:
        check_endpoint(endpoint)
        name_b = check_options(name, connect_timeout, reconnect,
                               ping_interval, max_pending,
                               queue_max_messages, queue_max_bytes,
                               accepts_batches, error_callback, context)
        self.endpoint = endpoint
        self._connect_timeout = connect_timeout
        self._max_pending = max_pending
        self._queue_max_messages = queue_max_messages
        self._queue_max_bytes = queue_max_bytes
        self._error_callback = error_callback
        self._context = context
        self._session = _AsyncSession(
            self, name=name_b, accepts_batches=accepts_batches,
            reconnect=reconnect, ping_interval=max(0.01, ping_interval),
            max_pending=max_pending, batching=False)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._sock: Optional[zmq.Socket] = None
        self._asock: Optional[zmq.asyncio.Socket] = None
        self._monitor: Optional[zmq.Socket] = None
        self._amonitor: Optional[zmq.asyncio.Socket] = None
        self._tasks: List["asyncio.Task"] = []
        self._callback_tasks: List["asyncio.Task"] = []
        self._unsent = 0          # sends ZeroMQ has not taken yet
        self._kick_scheduled = False
        self._last_send: Optional[asyncio.Future] = None
        self._tick_event: Optional[asyncio.Event] = None
        self._dispatch: Optional["asyncio.Queue"] = None
        self._inbox_lock: Optional[asyncio.Lock] = None
        self._started = False
        self._sockets_closed = False

    @classmethod
    async def connect(cls, endpoint: str = DEFAULT_ENDPOINT,
                      **options: Any) -> "AsyncClient":
        """Creates a client and connects it (HELLO/WELCOME within
        ``connect_timeout`` seconds). Raises Timeout, VersionMismatch,
        TooManyClients, SiftError (bad endpoint)."""
        client = cls(endpoint, **options)
        await client._connect()
        return client

    async def __aenter__(self) -> "AsyncClient":
        """``async with AsyncClient(...) as c:`` connects (if not yet) and
        closes on exit."""
        if not self._started:
            await self._connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _connect(self) -> None:
        if self._started:
            raise SiftError("already connected")
        self._started = True
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._tick_event = asyncio.Event()
        self._inbox_lock = asyncio.Lock()
        # The zmq.asyncio sockets own the libzmq sockets; self._sock and
        # self._monitor are non-owning synchronous views of them, for the
        # non-blocking reads and sends of the fast paths. (A non-owning
        # asyncio wrapper of an owning sync socket would leave two owners.)
        if self._context is None:
            actx = zmq.asyncio.Context.instance()
        else:
            actx = zmq.asyncio.Context.shadow(self._context.underlying)
        self._asock = actx.socket(zmq.DEALER)
        configure_socket(self._asock)
        self._amonitor = self._asock.get_monitor_socket(
            zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        sock = zmq.Socket.shadow(self._asock.underlying)
        self._sock = sock
        self._monitor = zmq.Socket.shadow(self._amonitor.underlying)
        try:
            sock.connect(self.endpoint)
        except zmq.ZMQError as e:
            self._close_sockets()
            raise SiftError(
                f"cannot connect to {self.endpoint!r}: {e} (endpoints look "
                "like tcp://127.0.0.1:7440 or ipc:///path)") from None
        welcome = loop.create_future()
        self._session.start(welcome, time.monotonic())
        self._flush()
        self._tasks = [loop.create_task(self._read_loop()),
                       loop.create_task(self._monitor_loop()),
                       loop.create_task(self._timer_loop())]
        try:
            await asyncio.wait_for(asyncio.shield(welcome),
                                   self._connect_timeout)
        except asyncio.TimeoutError:
            hello_error = self._session.hello_error
            await self.close(0)
            if welcome.done() and not welcome.cancelled():
                welcome.exception()  # retrieved: no "never retrieved" log
            if hello_error is not None:
                raise hello_error from None
            raise Timeout(no_answer(self.endpoint,
                                    self._connect_timeout)) from None
        except SiftError:
            await self.close(0)
            raise

    # ---- Publishing ----

    def _check_room(self) -> None:
        if self._unsent >= self._max_pending:
            raise PendingLimit(
                f"{self._unsent} messages wait for ZeroMQ to take them (the "
                "broker does not read); not queued, try again later")

    async def publish(self, topic: Name, payload: Payload = b"", *,
                      headers: HeadersArg = None,
                      reply_to: Optional[Name] = None, retain: bool = False,
                      delay: Optional[float] = None,
                      deliver_at: Optional[When] = None,
                      msg_id: Optional[Name] = None) -> None:
        """Publishes fire-and-forget (see Client.publish(); same arguments
        and errors). Returns once the message is handed to ZeroMQ, or queued
        while the client reconnects."""
        self._check_started()
        frames = _publish.frames(self._session.limits, topic, payload,
                                 headers, reply_to, 0, False, retain, delay,
                                 deliver_at, msg_id)
        self._check_room()
        self._session.enqueue(frames, None,
                              len(frames[1]) <= BATCH_PAYLOAD_LIMIT)
        self._flush()

    async def publish_confirmed(self, topic: Name, payload: Payload = b"", *,
                                headers: HeadersArg = None,
                                reply_to: Optional[Name] = None,
                                retain: bool = False,
                                delay: Optional[float] = None,
                                deliver_at: Optional[When] = None,
                                msg_id: Optional[Name] = None,
                                timeout: float = 5.0) -> PublishAck:
        """Publishes and waits up to ``timeout`` seconds until the broker
        routed or refused it (see Client.publish_confirmed(); a stream's
        record: once durable). Returns a PublishAck (stream_seq,
        duplicate)."""
        self._check_started()
        _args.timeout(timeout)
        rid = self._session.next_id()
        frames = _publish.frames(self._session.limits, topic, payload,
                                 headers, reply_to, rid, True, retain, delay,
                                 deliver_at, msg_id)
        ok = await self._call(CONFIRM, frames, rid, timeout,
                              f"publish on {topic!r}")
        return _publish_ack(ok)

    # ---- Subscribing ----

    async def subscribe(self, pattern: Name, *,
                        queue_group: Optional[Name] = None,
                        filter: Optional[Name] = None,
                        plugins: Sequence[PluginSpec] = (),
                        ack: Union[None, bool, AckOptions] = None,
                        callback: Optional[AsyncMessageCallback] = None,
                        stream: Union[None, str, StreamStart] = None,
                        consumer: Optional[str] = None,
                        deliver: Optional[Deliver] = None,
                        slow: Union[None, str, SlowConsumerOptions] = None,
                        timeout: float = 5.0) -> AsyncSubscription:
        """Subscribes and waits up to ``timeout`` seconds for the broker to
        accept (see Client.subscribe(); same arguments and errors, streams
        and ``slow`` included). A callback may be a plain function or a
        coroutine function; it runs in a task of this subscription's own, one
        message at a time."""
        self._check_started()
        lim = self._session.limits
        pat, group, filt, specs, ack_opts, start, slow_opts = sub_args(
            pattern, queue_group, filter, plugins, ack, callback, stream,
            consumer, deliver, slow, timeout, lim)
        queue = AsyncQueue(self._queue_max_messages, self._queue_max_bytes)
        state = SubState(self._session.next_id(), pat, group, filt,
                         specs, ack_opts, False, queue, start, slow_opts)
        state.check_size(lim)
        await self._subscribe(state, timeout)
        if callback is not None:
            # Messages that came meanwhile wait in the queue for it.
            self._start_callbacks(queue, callback, state.sid)
        return AsyncSubscription(self, state, queue, callback is not None)

    def _start_callbacks(self, queue: AsyncQueue,
                         callback: AsyncMessageCallback, sid: int) -> None:
        """Runs ``callback`` (awaiting it if it returns an awaitable) for each
        message of ``queue`` in a task of the subscription's own, until the
        queue closes and is drained."""

        async def run() -> None:
            while True:
                try:
                    msg = await queue.pop(None)
                except MessagesDropped as e:
                    log.warning("sift: subscription %d: %s", sid, e)
                    continue
                except SiftError:
                    return  # closed (unsubscribed, client closed, refused)
                try:
                    result = callback(msg)  # type: ignore[arg-type]
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("sift: a callback of subscription %d "
                                  "raised", sid)
        assert self._loop is not None
        self._callback_tasks = [t for t in self._callback_tasks
                                if not t.done()]
        self._callback_tasks.append(
            self._loop.create_task(run(), name=f"sift-cb-{sid}"))

    async def _subscribe(self, state: SubState, timeout: float) -> None:
        rid = self._session.next_id()
        assert self._loop is not None
        fut = self._loop.create_future()
        self._session.add_sub(state)
        try:
            self._session.request(SUB, [state.encode(rid)], fut, rid,
                                  sid=state.sid)
        except SiftError:
            self._session.remove_sub(state.sid)
            raise
        self._flush()
        try:
            await self._wait(fut, rid, timeout,
                             f"subscribe to "
                             f"{state.pattern.decode('latin-1')!r}")
        except Timeout:
            self._session.remove_sub(state.sid)
            try:
                self._session.enqueue([_wire.unsub(0, state.sid)])
                self._flush()
            except SiftError:
                pass
            raise

    async def _unsubscribe(self, sid: int, timeout: float) -> None:
        self._session.remove_sub(sid)
        if self._session.closed or self._session.dead is not None:
            return
        rid = self._session.next_id()
        assert self._loop is not None
        fut = self._loop.create_future()
        self._session.request(UNSUB, [_wire.unsub(rid, sid)], fut, rid)
        self._flush()
        await self._wait(fut, rid, timeout, "unsubscribe")

    # ---- Request/reply ----

    async def _ensure_inbox(self, timeout: float) -> None:
        assert self._inbox_lock is not None
        async with self._inbox_lock:
            if self._session.inbox_sid:
                return
            prefix = self._session.limits.inbox_prefix
            state = SubState(self._session.next_id(),
                             (prefix + ".>").encode(), inbox=True)
            await self._subscribe(state, timeout)
            if state.sid in self._session.subs:
                self._session.inbox_sid = state.sid

    async def request(self, topic: Name, payload: Payload = b"", *,
                      headers: HeadersArg = None,
                      timeout: float = 5.0) -> AsyncMessage:
        """Publishes a request and waits up to ``timeout`` seconds for the
        first reply (see Client.request())."""
        self._check_started()
        _args.timeout(timeout)
        # Checked before anything is sent (the reply subscription included).
        _publish.frames(self._session.limits, topic, payload, headers, None,
                        0, False)
        assert self._loop is not None
        deadline = self._loop.time() + timeout
        try:
            await self._ensure_inbox(timeout)
        except Timeout:
            raise Timeout(request_timeout_message(
                topic, timeout, self._session.ready, inbox=True)) from None
        token = self._session.next_id()
        fut = self._loop.create_future()
        reply_to = f"{self._session.limits.inbox_prefix}.{token}"
        frames = _publish.frames(self._session.limits, topic, payload,
                                 headers, reply_to, 0, False)
        self._session.enqueue(frames)
        self._session.requests[token] = fut
        self._flush()
        try:
            return await asyncio.wait_for(
                fut, max(0.0, deadline - self._loop.time()))
        except asyncio.TimeoutError:
            self._session.requests.pop(token, None)
            raise Timeout(request_timeout_message(
                topic, timeout, self._session.ready)) from None

    # ---- Explicit acks ----

    async def _ack_call(self, frames_for, message: Message,
                        timeout: Optional[float], what: str) -> None:
        check_message(message)
        _args.optional_seconds(timeout, "timeout")
        if not message.delivery_id:
            message._ackable()  # raises NotAckable
        self._check_started()
        if timeout is None:
            self._session.enqueue([frames_for(0)], epoch=message._epoch)
            self._flush()
            return
        rid = self._session.next_id()
        await self._call(ACK, [frames_for(rid)], rid, timeout, what,
                         resend=False, epoch=message._epoch)

    async def ack(self, message: Message,
                  timeout: Optional[float] = None) -> None:
        """Acknowledges a delivery (see Message.ack())."""
        await self._ack_call(lambda rid: _wire.ack(rid, [message.delivery_id]),
                             message, timeout, "ack")

    async def nack(self, message: Message, delay: float = 0.0,
                   timeout: Optional[float] = None) -> None:
        """Refuses a delivery: redelivered after ``delay`` seconds."""
        check_message(message)
        delay_ms = seconds_to_ms(delay, "delay")
        await self._ack_call(
            lambda rid: _wire.nack(rid, message.delivery_id, delay_ms),
            message, timeout, "nack")

    async def in_progress(self, message: Message,
                          timeout: Optional[float] = None) -> None:
        """Restarts a delivery's ack wait."""
        await self._ack_call(
            lambda rid: _wire.progress(rid, [message.delivery_id]),
            message, timeout, "in_progress")

    # ---- Durable streams ----

    async def add_stream(self, name: str,
                         subjects: Union[str, Sequence[str]], *,
                         max_age: Optional[float] = None,
                         max_bytes: Optional[int] = None,
                         max_msgs: Optional[int] = None,
                         fsync: str = "always",
                         dedup_window: Optional[float] = None,
                         segment_max_bytes: Optional[int] = None,
                         dedup_max_ids: Optional[int] = None,
                         timeout: float = 5.0) -> StreamInfo:
        """Creates a durable stream and returns its StreamInfo (see
        Client.add_stream(); same arguments and errors)."""
        self._check_started()
        fields = stream_config_fields(name, subjects, max_age, max_bytes,
                                      max_msgs, fsync, dedup_window,
                                      segment_max_bytes, dedup_max_ids)
        rid = self._session.next_id()
        infos = await self._call(
            STREAM, [_wire.stream_request(rid, _wire.STREAM_ADD, **fields)],
            rid, timeout, f"add_stream {name!r}")
        if infos:
            return StreamInfo.from_wire(infos[0])
        return await self.stream_info(name, timeout=timeout)

    async def stream_info(self, name: str, *,
                          timeout: float = 5.0) -> StreamInfo:
        """One stream's StreamInfo (see Client.stream_info())."""
        self._check_started()
        rid = self._session.next_id()
        infos = await self._call(
            STREAM, [_wire.stream_request(rid, _wire.STREAM_INFO,
                                          _validate.to_bytes(name, "name"))],
            rid, timeout, f"stream_info {name!r}")
        if not infos:
            raise UnknownStream(f"the broker answered no stream for {name!r}")
        return StreamInfo.from_wire(infos[0])

    async def streams(self, *, timeout: float = 5.0) -> List[StreamInfo]:
        """Every stream's StreamInfo (see Client.streams())."""
        self._check_started()
        rid = self._session.next_id()
        infos = await self._call(
            STREAM, [_wire.stream_request(rid, _wire.STREAM_LIST)], rid,
            timeout, "streams")
        return [StreamInfo.from_wire(i) for i in infos]

    async def delete_stream(self, name: str, *, timeout: float = 5.0) -> None:
        """Deletes a stream (see Client.delete_stream())."""
        self._check_started()
        rid = self._session.next_id()
        await self._call(STREAM, [_wire.stream_request(
            rid, _wire.STREAM_DELETE, _validate.to_bytes(name, "name"))],
            rid, timeout, f"delete_stream {name!r}")

    async def delete_consumer(self, stream: str, consumer: str, *,
                              timeout: float = 5.0) -> None:
        """Deletes a durable consumer (see Client.delete_consumer())."""
        self._check_started()
        rid = self._session.next_id()
        await self._call(STREAM, [_wire.stream_request(
            rid, _wire.CONSUMER_DELETE, _validate.to_bytes(stream, "stream"),
            consumer=_validate.to_bytes(consumer, "consumer"))], rid, timeout,
            f"delete_consumer {stream!r} {consumer!r}")

    async def fetch(self, stream: Union[str, StreamStart], batch: int = 1, *,
                    consumer: Optional[str] = None, wait: float = 0.0,
                    deliver: Optional[Deliver] = None,
                    pattern: Optional[Name] = None,
                    ack: Union[None, bool, AckOptions] = None,
                    timeout: float = 5.0) -> List[AsyncMessage]:
        """Polls a stream: up to ``batch`` records, waiting up to ``wait``
        seconds for them; returns within ``wait + timeout`` seconds (see
        Client.fetch(); same arguments and errors). Several may run at
        once."""
        self._check_started()
        _args.timeout(timeout)
        start, batch_n, wait_ms, pat, ack_opts = _fetch_args(
            self._session.limits, stream, batch, consumer, wait, deliver,
            pattern, ack)
        sid = self._session.next_id()
        rid = self._session.next_id()
        frames = [_wire.fetch(rid, sid, start, batch_n, wait_ms, pat,
                              ack_opts)]
        assert self._loop is not None
        fut = self._loop.create_future()
        self._session.fetch(frames, fut, rid, sid)
        self._flush()
        return await self._wait(fut, rid, wait + timeout,
                                f"fetch from {start.stream!r}")

    # ---- Broker administration ----

    async def stats(self, timeout: float = 5.0):
        """The broker's counters (a sift_pb2.StatsReply)."""
        self._check_started()
        rid = self._session.next_id()
        return await self._call(STATS, [_wire.stats(rid)], rid, timeout,
                                "stats")

    async def declare(self, pattern: str, queue_group: str, ack=None,
                      timeout: float = 5.0) -> None:
        """Declares a work queue (see Client.declare())."""
        self._check_started()
        rid = self._session.next_id()
        await self._call(RELOAD,
                         [declare_frame(rid, pattern, queue_group, ack,
                                        self._session.limits)], rid,
                         timeout, f"declare {queue_group!r} on {pattern!r}")

    async def reload(self, timeout: float = 5.0) -> None:
        """Asks the broker to re-read its plugin config (see
        Client.reload())."""
        self._check_started()
        rid = self._session.next_id()
        await self._call(RELOAD, [_wire.reload(rid)], rid, timeout, "reload")

    # ---- State ----

    @property
    def limits(self) -> Limits:
        """The broker's limits and this session's identity (WELCOME)."""
        return self._session.limits

    @property
    def client_id(self) -> str:
        """The id the broker gave this session (changes on reconnect)."""
        return self._session.limits.client_id

    @property
    def inbox_prefix(self) -> str:
        """``"_INBOX." + client_id``: this session's private topics."""
        return self._session.limits.inbox_prefix

    @property
    def server_version(self) -> str:
        """The broker's version, e.g. ``"siftd 0.1.0"``."""
        return self._session.limits.server_version

    @property
    def reconnects(self) -> int:
        """How many times the client has re-established its session."""
        return self._session.reconnects

    @property
    def broker_dropped(self) -> int:
        """Deliveries the broker dropped for this client (SLOW_CONSUMER
        notices; may lag)."""
        return self._session.broker_dropped

    @property
    def is_connected(self) -> bool:
        """True while a session is established."""
        return self._session.ready

    @property
    def is_closed(self) -> bool:
        """True once close() was called."""
        return self._session.closed

    # ---- Closing ----

    async def close(self, timeout: float = 2.0) -> None:
        """Sends what is queued (for at most ``timeout`` seconds), says BYE,
        stops the client's tasks and closes the socket. Waiting calls fail
        with ClientClosed; subscriptions end. Idempotent."""
        _args.timeout(timeout)
        if self._sockets_closed:
            return
        session = self._session
        if self._loop is None:  # never connected
            session.closed = True
            return
        deadline = self._loop.time() + max(0.0, timeout)
        was_closed = session.closed
        session.closed = True
        if not was_closed and session.ready:
            # Bounded flush of what is queued, then BYE.
            while (self._unsent or session.outbox) and \
                    self._loop.time() < deadline and session.ready:
                self._flush()
                await asyncio.sleep(0.005)
            session.ready = False
            session.control.append([_wire.bye()])
            self._send_frames(session.take_sendable())
            linger = int((deadline - self._loop.time()) * 1000)
            try:
                self._sock.setsockopt(zmq.LINGER, max(linger, 100))
            except zmq.ZMQError:
                pass
        session.shutdown(ClientClosed("the client closed"))
        current = asyncio.current_task()
        for t in self._tasks:
            if t is not current:
                t.cancel()
        for t in self._tasks:
            if t is not current:
                try:
                    await t
                except (asyncio.CancelledError, Exception):
                    pass
        if self._dispatch is not None:
            self._dispatch.put_nowait(None)
        # Callback tasks finish what was queued before the close (bounded).
        pending = [t for t in self._callback_tasks
                   if t is not current and not t.done()]
        if pending:
            _, late = await asyncio.wait(
                pending, timeout=max(0.0, deadline - self._loop.time()) + 0.1)
            for t in late:
                t.cancel()
        self._close_sockets()

    # ---- Internals ----

    def _check_started(self) -> None:
        if not self._started:
            raise NotConnected("not connected: use AsyncClient.connect() or "
                               "async with AsyncClient(...)")
        self._session.check_open()

    def _ensure_dispatcher(self) -> None:
        if self._dispatch is None:
            assert self._loop is not None
            self._dispatch = asyncio.Queue()
            self._tasks.append(self._loop.create_task(self._dispatch_loop()))

    async def _dispatch_loop(self) -> None:
        assert self._dispatch is not None
        while True:
            fn = await self._dispatch.get()
            if fn is None:
                return
            try:
                await fn()
            except Exception:
                log.exception("sift: a callback raised")

    def _report(self, exc: SiftError) -> None:
        cb = self._error_callback
        if cb is None:
            log.warning("sift: %s", exc)
            return
        self._ensure_dispatcher()

        async def run() -> None:
            result = cb(exc)
            if inspect.isawaitable(result):
                await result
        assert self._dispatch is not None
        self._dispatch.put_nowait(run)

    async def _call(self, kind: str, frames: List[bytes], rid: int,
                    timeout: float, what: str, resend: bool = True,
                    epoch: int = 0) -> Any:
        _args.timeout(timeout)  # before anything is sent
        assert self._loop is not None
        fut = self._loop.create_future()
        self._session.request(kind, frames, fut, rid, resend=resend,
                              epoch=epoch)
        self._flush()
        return await self._wait(fut, rid, timeout, what)

    async def _wait(self, fut: "asyncio.Future", rid: int, timeout: float,
                    what: str) -> Any:
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self._session.forget(rid)
            state = "" if self._session.ready else \
                " (not connected: reconnecting)"
            raise Timeout(f"{what}: no answer from the broker within "
                          f"{timeout} s{state}") from None

    def _flush(self) -> None:
        """Sends what the session has ready (never blocks: ZeroMQ queues)."""
        if self._sockets_closed:
            return
        frames_list = self._session.take_sendable()
        if frames_list:
            self._send_frames(frames_list)

    def _send_frames(self, frames_list: List[List[bytes]]) -> None:
        """Sends in order: straight to the socket while nothing waits
        (the fast path), else through zmq.asyncio, which queues in order."""
        assert self._asock is not None and self._sock is not None
        sock = self._sock
        sent_directly = False
        for frames in frames_list:
            if not self._unsent:
                try:
                    sock.send_multipart(frames, zmq.NOBLOCK)
                    sent_directly = True
                    continue
                except zmq.Again:
                    pass
                except zmq.ZMQError as e:
                    log.warning("sift: send failed: %s", e)
                    continue
            fut = self._asock.send_multipart(frames)
            if not fut.done():
                self._unsent += 1
                fut.add_done_callback(self._sent)
            elif fut.exception() is not None:
                log.warning("sift: send failed: %s", fut.exception())
        # A send may consume the edge of the socket's fd that the reader's
        # poll waits on: if input is waiting, read it without the fd.
        if (sent_directly and not self._kick_scheduled and
                sock.get(zmq.EVENTS) & zmq.POLLIN):
            self._kick_scheduled = True
            assert self._loop is not None
            self._loop.call_soon(self._kick)

    def _kick(self) -> None:
        self._kick_scheduled = False
        if not self._sockets_closed:
            self._drain_socket()

    def _drain_socket(self) -> None:
        """Handles what the socket holds, up to a bound per call (then
        comes back soon)."""
        assert self._sock is not None
        # Connection events first: a reconnect's CONNECTED is queued before
        # anything the new connection brings.
        self._drain_monitor()
        sock = self._sock
        session = self._session
        for _ in range(512):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            except zmq.ZMQError:
                return
            session.on_frames(frames)
        else:
            if not self._kick_scheduled:
                self._kick_scheduled = True
                assert self._loop is not None
                self._loop.call_soon(self._kick)
        self._flush()

    def _sent(self, fut: "asyncio.Future") -> None:
        self._unsent -= 1
        if not fut.cancelled() and fut.exception() is not None:
            log.warning("sift: send failed: %s", fut.exception())

    def _drain_monitor(self) -> None:
        assert self._monitor is not None
        while True:
            try:
                frames = self._monitor.recv_multipart(zmq.NOBLOCK)
            except (zmq.Again, zmq.ZMQError):
                return
            event = parse_monitor_message(frames)["event"]
            if event == zmq.EVENT_DISCONNECTED:
                self._session.on_disconnected()
            elif event == zmq.EVENT_CONNECTED:
                self._session.on_connected()

    async def _monitor_loop(self) -> None:
        assert self._amonitor is not None
        while True:
            await self._amonitor.poll(flags=zmq.POLLIN)
            self._drain_monitor()
            self._flush()

    async def _read_loop(self) -> None:
        assert self._asock is not None
        while True:
            await self._asock.poll(flags=zmq.POLLIN)
            self._drain_socket()
            await asyncio.sleep(0)  # let consumers run between rounds

    async def _timer_loop(self) -> None:
        assert self._loop is not None
        session = self._session
        while True:
            wait = session.next_deadline() - time.monotonic()
            if wait > 0:
                await asyncio.sleep(min(wait, 1.0))
            session.tick(time.monotonic())
            self._flush()

    def _close_sockets(self) -> None:
        if self._sockets_closed:
            return
        self._sockets_closed = True
        try:
            if self._asock is not None:
                self._asock.disable_monitor()
        except zmq.ZMQError:
            pass
        if self._amonitor is not None:
            self._amonitor.close(0)
        if self._asock is not None:
            self._asock.close()
