"""The blocking sift client: connect, publish, subscribe, request/reply,
explicit acks, durable streams (admin, fetch, stream subscriptions), stats
(docs/python.md).

Threads: a Client is safe to use from any number of threads at once. It runs
one background I/O thread ("sift-io") that owns the ZeroMQ socket: it sends
what callers queue, receives, answers waiters, keeps the session alive with
PINGs and says HELLO again after losing the broker. Callers hand it work
under one lock and wake it through an eventfd. Each callback subscription
has a thread of its own ("sift-cb-<sid>") that runs its callback one message
at a time, in arrival order (as nats clients do); the error_callback runs on
one more ("sift-errors"). Callbacks may call anything on the client, blocking
calls included (request, publish_confirmed, ack with a timeout), even one
answered by another callback of the same client. Every blocking call has a
timeout: a finite number of seconds >= 0 (None, negative, NaN or infinite
timeouts are refused with InvalidRequest before anything is sent). Arguments
of a wrong type are refused at once, in the caller's thread, with
InvalidArgumentType (a TypeError) naming the argument.
"""

import concurrent.futures
import logging
import os
import threading
import time
import weakref
from typing import Any, Callable, Iterator, List, Optional, Sequence, Union

import zmq
from zmq.utils.monitor import recv_monitor_message

from . import _args, _publish, _validate, _wire
from ._queue import SyncQueue
from ._session import (ACK, BATCH_PAYLOAD_LIMIT, CONFIRM, RELOAD, STATS,
                       STREAM, SUB, UNSUB, Session, SubState)
from ._publish import When
from ._validate import HeadersArg, Name
from .errors import (ClientClosed, InvalidRequest, MessagesDropped,
                     NotConnected, SiftError, SubscriptionClosed, Timeout,
                     UnknownStream)
from .message import Message
from .options import (AckOptions, Deliver, Limits, PluginSpec, PublishAck,
                      SlowConsumerOptions, StreamInfo, StreamStart,
                      ack_options, plugin_specs, seconds_to_ms, slow_options,
                      stream_start, stream_config_fields)

#: Most records one fetch() may ask for.
MAX_FETCH_BATCH = 10000

log = logging.getLogger("sift")

#: siftd's default endpoint.
DEFAULT_ENDPOINT = "tcp://127.0.0.1:7440"

Payload = Union[bytes, bytearray, memoryview, str]
ErrorCallback = Callable[[SiftError], Any]
MessageCallback = Callable[[Message], Any]


def configure_socket(sock: "zmq.Socket") -> None:
    """DEALER options both clients use (docs/protocol.md §1, §15.1)."""
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDHWM, 1000000)
    sock.setsockopt(zmq.RCVHWM, 1000000)
    # Notice a dead broker without TCP's help.
    sock.setsockopt(zmq.HEARTBEAT_IVL, 1000)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)
    sock.setsockopt(zmq.RECONNECT_IVL, 100)
    sock.setsockopt(zmq.RECONNECT_IVL_MAX, 1000)
    # A connection refused for lack of room is retried after 3 s, not 30.
    sock.setsockopt(zmq.HANDSHAKE_IVL, 3000)


# The longest path a Unix domain socket takes (sun_path less its NUL).
MAX_IPC_PATH_BYTES = 107


def check_endpoint(endpoint: str) -> None:
    """SiftError, at once, for an endpoint ZeroMQ would refuse with a bare
    errno text or take and retry until the connect timeout: no or an
    unknown transport (ZeroMQ's are lowercase), an ipc:// path that is
    empty or over MAX_IPC_PATH_BYTES, a tcp:// one without a host or a port
    from 1 to 65535."""
    if not isinstance(endpoint, str) or "://" not in endpoint:
        raise SiftError(
            f"invalid endpoint {endpoint!r} (endpoints look like "
            "tcp://127.0.0.1:7440 or ipc:///path)")
    transport = endpoint.split("://", 1)[0]
    if transport not in ("tcp", "ipc", "inproc"):
        raise SiftError(
            f"cannot connect to {endpoint!r}: unknown transport "
            f"{transport + '://'!r} (endpoints look like tcp://127.0.0.1:7440 "
            "or ipc:///path)")
    if endpoint == "ipc://":
        raise SiftError(f"cannot connect to {endpoint!r}: no path "
                        "(ipc://PATH)")
    if endpoint.startswith("ipc://"):
        # sockaddr_un's sun_path: ZeroMQ's own error says only "File name
        # too long".
        size = len(endpoint[len("ipc://"):].encode())
        if size > MAX_IPC_PATH_BYTES:
            raise SiftError(
                f"cannot connect to {endpoint!r}: its path is {size} bytes, "
                f"over the {MAX_IPC_PATH_BYTES} a Unix socket's path may "
                "have")
    if endpoint.startswith("tcp://"):
        # ZeroMQ takes tcp://host:99999 and retries it until the connect
        # timeout; the C++ client refuses it the same way.
        host, colon, port = endpoint[len("tcp://"):].rpartition(":")
        problem = ""
        if not colon or not port:
            problem = "no port (tcp://HOST:PORT)"
        elif not host:
            problem = "no host (tcp://HOST:PORT)"
        elif not port.isdigit() or not port.isascii() or len(port) > 5:
            problem = f"port {port!r} is not a number from 1 to 65535"
        elif not 1 <= int(port) <= 65535:
            problem = f"port {int(port)} is out of range (1 to 65535)"
        if problem:
            raise SiftError(
                f"cannot connect to {endpoint!r}: {problem} (endpoints look "
                "like tcp://127.0.0.1:7440 or ipc:///path)")


def no_answer(endpoint: str, connect_timeout: float) -> str:
    """The text of the Timeout raised when nobody answered at `endpoint`
    within `connect_timeout` seconds: an ipc:// path with no socket file is
    named (a tcp:// port with nothing listening cannot be told from a busy
    broker: ZeroMQ retries both quietly)."""
    text = f"cannot connect to {endpoint}: no answer within {connect_timeout} s"
    if endpoint.startswith("inproc://"):
        return (f"{text} (an inproc:// endpoint is reached only inside this "
                "process's ZeroMQ context, and siftd runs in its own: use "
                "tcp:// or ipc://)")
    if endpoint.startswith("ipc://"):
        path = endpoint[len("ipc://"):]
        try:
            os.stat(path)
        except OSError as e:
            return (f"{text}: there is no socket file {path} ({e.strerror}); "
                    "is siftd running there?")
    return f"{text} (is siftd running there?)"


def check_options(name: str, connect_timeout: float, reconnect: bool,
                  ping_interval: float, max_pending: int,
                  queue_max_messages: int, queue_max_bytes: int,
                  accepts_batches: bool, error_callback: Any,
                  context: Any) -> bytes:
    """The constructor arguments Client and AsyncClient share, checked (the
    client name as bytes). Raises SiftError (a name too long),
    InvalidArgumentType, InvalidRequest."""
    name_b = _validate.to_bytes(name, "name")
    if len(name_b) > _validate.MAX_CLIENT_NAME_BYTES:
        raise SiftError(f"client name of {len(name_b)} bytes exceeds "
                        f"{_validate.MAX_CLIENT_NAME_BYTES}")
    _args.timeout(connect_timeout, "connect_timeout")
    _args.boolean(reconnect, "reconnect")
    _args.positive_seconds(ping_interval, "ping_interval")
    _args.integer(max_pending, "max_pending")
    _args.integer(queue_max_messages, "queue_max_messages")
    _args.integer(queue_max_bytes, "queue_max_bytes")
    _args.boolean(accepts_batches, "accepts_batches")
    _args.callback(error_callback, "error_callback")
    if context is not None:
        _args.instance(context, zmq.Context, "context",
                       "a zmq.Context (or None)")
    return name_b


def check_message(message: Any, what: str = "message") -> Message:
    """ack()'s, nack()'s and in_progress()'s message."""
    return _args.instance(message, Message, what,
                          "a sift.Message received with explicit acks")


def sub_args(pattern, queue_group, filter, plugins, ack, callback, stream,
             consumer, deliver, slow, timeout, limits: Limits):
    """subscribe()'s arguments checked and converted (Client and
    AsyncClient): (pattern, group, filter, plugins, AckOptions or None,
    StreamStart or None, SlowConsumerOptions or None)."""
    _args.timeout(timeout)
    _args.callback(callback)
    pat = _validate.pattern(pattern, limits.max_topic_length,
                            limits.max_topic_tokens)
    group = _validate.queue_group(queue_group)
    filt = _validate.to_bytes(filter, "filter") if filter is not None else b""
    specs = plugin_specs(plugins)
    ack_opts = ack_options(ack)
    start = _stream_sub(stream, consumer, deliver, group, filt, specs)
    return pat, group, filt, specs, ack_opts, start, slow_options(slow)


def declare_frame(rid: int, pattern: Name, queue_group: Name, ack,
                  limits: Limits) -> bytes:
    """declare()'s DECLARE, its arguments checked."""
    pat = _validate.pattern(pattern, limits.max_topic_length,
                            limits.max_topic_tokens)
    group = _validate.queue_group(queue_group)
    return _wire.declare(rid, pat, group, ack_options(ack))


def request_timeout_message(topic: Name, timeout: float, ready: bool,
                            inbox: bool = False) -> str:
    """Timeout's text for a request(): it names the request, and says when
    the broker is unreachable (the client reconnecting)."""
    if not ready:
        return (f"request on {topic!r}: no reply within {timeout} s: the "
                "broker is unreachable (not connected; the client is "
                "reconnecting)")
    if inbox:
        return (f"request on {topic!r}: no reply within {timeout} s (the "
                "broker did not accept the client's reply subscription in "
                "time)")
    return (f"no reply to request on {topic!r} within {timeout} s (nobody "
            "answered: there is no \"no responders\" signal)")


def _publish_ack(ok) -> PublishAck:
    """The PublishAck of a confirmed PUB's Ok (None: an empty answer)."""
    if ok is None:
        return PublishAck()
    return PublishAck(stream_seq=ok.stream_seq, duplicate=ok.duplicate)


def _stream_sub(stream, consumer, deliver, group: bytes, filt: bytes,
                plugins) -> Optional[StreamStart]:
    """subscribe()'s stream arguments as a StreamStart (None: no stream),
    or InvalidRequest."""
    start = stream_start(stream, consumer, deliver)
    if start is not None and (group or filt or plugins):
        raise InvalidRequest("a stream subscription takes no queue_group, "
                             "filter or plugins")
    return start


def _fetch_args(limits: Limits, stream, batch: int, consumer, wait: float,
                deliver, pattern, ack):
    """fetch()'s arguments checked and converted: (StreamStart, batch,
    wait in ms, pattern bytes, AckOptions or None)."""
    batch_n = _args.integer(batch, "batch", 1, MAX_FETCH_BATCH)
    start = stream_start(stream, consumer, deliver)
    if start is None:
        raise InvalidRequest("fetch needs a stream")
    wait_ms = seconds_to_ms(wait, "wait")
    pat = (b"" if pattern is None or pattern in ("", b"") else
           _validate.pattern(pattern, limits.max_topic_length,
                             limits.max_topic_tokens))
    return start, batch_n, wait_ms, pat, ack_options(ack)


class _Dispatcher:
    """Runs functions one at a time, in order, on a thread of its own (the
    error_callback's)."""

    def __init__(self) -> None:
        import queue
        self._q: "queue.SimpleQueue" = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run,
                                        name="sift-errors", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any]) -> None:
        self._q.put(fn)

    def _run(self) -> None:
        while True:
            fn = self._q.get()
            if fn is None:
                return
            try:
                fn()
            except Exception:
                log.exception("sift: a callback raised")

    def stop(self, timeout: float) -> None:
        self._q.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


class _ClientSession(Session):
    """The session with the hooks of the blocking client. Called under
    Client._lock (or, before the I/O thread starts, by its constructor)."""

    def __init__(self, client: "Client", **kw: Any) -> None:
        super().__init__(**kw)
        self._client = client

    def _resolve(self, waiter, value) -> None:
        if waiter is not None and not waiter.done():
            try:
                waiter.set_result(value)
            except concurrent.futures.InvalidStateError:
                pass

    def _fail(self, waiter, exc) -> None:
        if waiter is not None and not waiter.done():
            try:
                waiter.set_exception(exc)
            except concurrent.futures.InvalidStateError:
                pass

    def _deliver(self, sub: SubState, message: Message) -> None:
        sub.sink.push(message)

    def _close_sink(self, sub: SubState, exc) -> None:
        if sub.sink is not None:
            sub.sink.close(exc)

    def _report(self, exc: SiftError) -> None:
        self._client._report(exc)

    def _make_message(self, **fields: Any) -> Message:
        return Message(client=self._client, **fields)


class _SubscriptionBase:
    """What Subscription and AsyncSubscription share: the subscription's
    state and its local queue."""

    def __init__(self, client: Any, state: SubState, queue: Any,
                 has_callback: bool) -> None:
        self._client = client
        self._state = state
        self._queue = queue
        self._has_callback = has_callback
        self._active = True

    @property
    def sid(self) -> int:
        """The subscription id (unique per client)."""
        return self._state.sid

    @property
    def pattern(self) -> str:
        """The pattern subscribed to."""
        return self._state.pattern.decode("latin-1")

    @property
    def queue_group(self) -> str:
        """The queue group ("" if none)."""
        return self._state.queue_group.decode("latin-1")

    @property
    def stream(self) -> Optional[StreamStart]:
        """The stream this subscription consumes (None: live routing)."""
        return self._state.stream

    @property
    def dropped(self) -> int:
        """Messages dropped because this subscription's local queue was
        full, since it was made (never decreases)."""
        return self._queue.dropped

    @property
    def closed(self) -> bool:
        """True once unsubscribed or closed (queued messages may remain)."""
        return self._queue.closed

    def _check_pull(self) -> None:
        if self._has_callback:
            raise SiftError("this subscription delivers to its callback; "
                            "next() is not used")


class Subscription(_SubscriptionBase):
    """A live subscription of a blocking Client.

    Without a callback, messages queue (bounded: the client's
    queue_max_messages and queue_max_bytes) until next() or iteration takes
    them. next() may be called from any thread; each message goes to one
    caller. Use it as a context manager, or call unsubscribe(), to stop it.
    """

    def next(self, timeout: Optional[float] = None) -> Message:
        """The next message, waiting up to ``timeout`` seconds (None: until
        a message comes or the subscription closes; this waits for a
        message, not for the broker: with the broker away, it waits for the
        reconnect and the messages after it). A negative or NaN timeout
        raises InvalidRequest.

        Raises:
          Timeout: nothing came within ``timeout``.
          MessagesDropped: messages were dropped here because the queue was
            full (once per run of drops, at its place in the stream); not an
            end: call next() again.
          SubscriptionClosed: unsubscribed or the client closed, and every
            message queued before that has been returned.
          SiftError: the broker refused the subscription when the client
            subscribed again after a reconnect (its code says why).
          SiftError: the subscription has a callback (next() is not used).
        """
        self._check_pull()
        return self._queue.pop(_args.optional_seconds(timeout, "timeout"))

    def __iter__(self) -> Iterator[Message]:
        """Yields messages until the subscription closes. Drops (queue full)
        are logged as warnings and counted in ``dropped``, not raised."""
        while True:
            try:
                yield self.next()
            except MessagesDropped as e:
                log.warning("sift: subscription %d (%s): %s", self.sid,
                            self.pattern, e)
            except SubscriptionClosed:
                return

    def unsubscribe(self, timeout: float = 5.0) -> None:
        """Stops deliveries at once (messages already queued can still be
        taken), then waits up to ``timeout`` seconds for the broker's answer.
        Idempotent. Raises Timeout (deliveries stopped anyway)."""
        _args.timeout(timeout)
        if not self._active:
            return
        self._active = False
        self._client._unsubscribe(self._state.sid, timeout)

    def __enter__(self) -> "Subscription":
        """``with client.subscribe(...) as sub:`` unsubscribes on exit."""
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.unsubscribe()
        except SiftError as e:
            log.debug("sift: unsubscribe on exit: %s", e)

    def __repr__(self) -> str:
        return f"<sift.Subscription sid={self.sid} pattern={self.pattern!r}>"


class Client:
    """A connection to a sift broker: blocking API, safe from any thread.

    ``Client(endpoint)`` connects and completes the HELLO/WELCOME handshake
    before it returns. Close it with close() or a ``with`` block.

    Args:
      endpoint: ``tcp://HOST:PORT`` or ``ipc://PATH`` (default
        ``tcp://127.0.0.1:7440``).
      name: free text the broker shows in its logs (at most 256 bytes).
      connect_timeout: seconds to wait for the broker's WELCOME.
      reconnect: after losing the broker (restart, network, session
        timeout), say HELLO again and resubscribe everything; requests the
        broker refused with HELLO_REQUIRED are resent. False: the client
        fails every call with NotConnected once its session is lost.
      ping_interval: seconds between keepalive PINGs (at most a third of the
        broker's client_timeout_ms is used).
      max_pending: messages the client may hold unsent (e.g. while the
        broker is away); beyond, calls raise PendingLimit.
      queue_max_messages, queue_max_bytes: bounds of each subscription's
        local queue (messages; payload bytes); 0 = unbounded. Beyond, the
        newest messages are dropped and counted (Subscription.dropped).
      accepts_batches: let the broker pack deliveries, and the OK and
        ERROR answers to requests, into BATCH frames (protocol.md §9:
        HELLO's accepts_batches and accepts_batched_replies).
      batch_publishes: pack fire-and-forget publishes that queue up into
        BATCH frames (never waits to fill one).
      error_callback: called (on the "sift-errors" thread) with each error no
        call waits for: a fire-and-forget publish or ack the broker refused,
        SlowConsumer notices, resubscriptions refused after a reconnect.
        Default: logged on the "sift" logger.
      context: a zmq.Context to use (default: zmq.Context.instance()).

    Raises:
      Timeout: no WELCOME within connect_timeout (no broker there; the
        message names an ipc:// path with no socket file).
      VersionMismatch: the broker speaks another protocol version.
      TooManyClients: the broker stayed full for connect_timeout.
      SiftError: a malformed endpoint.
      InvalidArgumentType, InvalidRequest: an option of a wrong type or
        value (e.g. a non-callable error_callback, connect_timeout=None).

    Every method checks its arguments before it sends anything: a wrong
    type raises InvalidArgumentType (an InvalidRequest that is also a
    TypeError) naming the argument and what it accepts; a ``timeout`` (or
    delay, wait) that is None, negative, NaN or infinite raises
    InvalidRequest (a ValueError). Every blocking call has a timeout; the
    two calls where None means something are Subscription.next(None) (wait
    for a message as long as it takes, as iteration does) and
    ack()/nack()/in_progress() with timeout=None (fire-and-forget).
    """

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, *, name: str = "",
                 connect_timeout: float = 5.0, reconnect: bool = True,
                 ping_interval: float = 5.0, max_pending: int = 100000,
                 queue_max_messages: int = 65536,
                 queue_max_bytes: int = 64 << 20,
                 accepts_batches: bool = True, batch_publishes: bool = True,
                 error_callback: Optional[ErrorCallback] = None,
                 context: Optional["zmq.Context"] = None) -> None:
        check_endpoint(endpoint)
        name_b = check_options(name, connect_timeout, reconnect,
                               ping_interval, max_pending,
                               queue_max_messages, queue_max_bytes,
                               accepts_batches, error_callback, context)
        _args.boolean(batch_publishes, "batch_publishes")
        self.endpoint = endpoint
        self._queue_max_messages = queue_max_messages
        self._queue_max_bytes = queue_max_bytes
        self._error_callback = error_callback
        self._lock = threading.Lock()        # guards _session and below
        self._inbox_lock = threading.Lock()  # one inbox subscription at once
        self._session = _ClientSession(
            self, name=name_b, accepts_batches=accepts_batches,
            reconnect=reconnect, ping_interval=max(0.01, ping_interval),
            max_pending=max_pending, batching=batch_publishes)
        self._dispatcher: Optional[_Dispatcher] = None  # error_callback's
        self._callback_threads: List[threading.Thread] = []
        self._close_deadline: Optional[float] = None
        self._closed_event = threading.Event()
        self._wake_pending = False
        # Closed when the Client is collected, never earlier: a late _wake()
        # must not write into a reused descriptor.
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        weakref.finalize(self, os.close, self._wake_fd)

        ctx = context if context is not None else zmq.Context.instance()
        self._sock = ctx.socket(zmq.DEALER)
        configure_socket(self._sock)
        self._monitor = self._sock.get_monitor_socket(
            zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        try:
            self._sock.connect(endpoint)
        except zmq.ZMQError as e:
            self._close_sockets()
            raise SiftError(
                f"cannot connect to {endpoint!r}: {e} (endpoints look like "
                "tcp://127.0.0.1:7440 or ipc:///path)") from None

        welcome: "concurrent.futures.Future" = concurrent.futures.Future()
        self._session.start(welcome, time.monotonic())
        self._thread = threading.Thread(target=self._run, name="sift-io",
                                        daemon=True)
        self._thread.start()
        try:
            welcome.result(connect_timeout)
        except concurrent.futures.TimeoutError:
            hello_error = self._session.hello_error
            self.close(0)
            if hello_error is not None:
                raise hello_error from None
            raise Timeout(no_answer(endpoint, connect_timeout)) from None
        except SiftError:
            self.close(0)
            raise

    # ---- Publishing ----

    def publish(self, topic: Name, payload: Payload = b"", *,
                headers: HeadersArg = None,
                reply_to: Optional[Name] = None, retain: bool = False,
                delay: Optional[float] = None,
                deliver_at: Optional[When] = None,
                msg_id: Optional[Name] = None) -> None:
        """Publishes fire-and-forget: returns once the message is queued for
        sending (it is sent in order, after anything queued before it).

        Args:
          topic: a literal topic (no wildcards), str or bytes.
          payload: bytes (str is sent as UTF-8), at most the broker's
            max_payload_bytes.
          headers: a dict or a list of (key, value) pairs (keys may repeat
            in a list); keys are 1 to 64 token characters, values str or
            bytes. Checked against the broker's max_headers and
            max_headers_bytes.
          reply_to: a literal topic for replies, or None.
          retain: keep it as the topic's retained value (MQTT): later
            subscriptions get it first; an empty payload clears it.
          delay: route it after this many seconds (Celery's countdown);
            the broker holds it (in memory) until then.
          deliver_at: route it at this time: Unix seconds (float) or a
            datetime (Celery's eta). At most one of delay and deliver_at,
            not with retain, at most the broker's max_delay_ms ahead.
          msg_id: a message id, sent as the header ``sift-msg-id`` (after
            ``headers``): a stream that captures the topic stores a given
            id once within its dedup window (see publish_confirmed()).
        Raises (locally, before sending):
          InvalidTopic, Forbidden ($sift. topics), PayloadTooLarge,
          InvalidHeader, HeadersTooLarge, InvalidRequest (delay and
          deliver_at, or either with retain, or too far ahead; an empty
          msg_id),
          Unsupported (the broker takes no headers, or no delays),
          PendingLimit, ClientClosed, NotConnected.
        Errors the broker finds later (e.g. StoreFull for a retained or
        delayed message past the broker's bound) go to error_callback;
        use publish_confirmed() to get them here.
        """
        frames = _publish.frames(self._session.limits, topic, payload,
                                 headers, reply_to, 0, False, retain, delay,
                                 deliver_at, msg_id)
        batchable = len(frames[1]) <= BATCH_PAYLOAD_LIMIT
        with self._lock:
            self._session.enqueue(frames, None, batchable)
        self._wake()

    def publish_confirmed(self, topic: Name, payload: Payload = b"", *,
                          headers: HeadersArg = None,
                          reply_to: Optional[Name] = None,
                          retain: bool = False, delay: Optional[float] = None,
                          deliver_at: Optional[When] = None,
                          msg_id: Optional[Name] = None,
                          timeout: float = 5.0) -> PublishAck:
        """Publishes and waits up to ``timeout`` seconds until the broker
        has routed the message (handed it to every subscriber's queue, or
        found none) or refused it. Not an acknowledgement by subscribers.

        Arguments as publish(). A delayed message is confirmed once the
        broker holds it. When a stream captures the topic, the answer comes
        only once the record is durable per the stream's fsync policy.

        Returns: a PublishAck: ``stream_seq``, the record's sequence number
          in the stream that captured the topic (0: none did), and
          ``duplicate``, True if a record with the same ``msg_id`` was
          already stored within the stream's dedup window (nothing new was
          stored; stream_seq is the first one's).

        Raises: what publish() raises, plus the broker's refusal
        (InvalidTopic, Forbidden, PayloadTooLarge, HeadersTooLarge,
        StoreFull, ...),
        Timeout, NotConnected (the connection was lost before the broker
        answered: the message may or may not have been published). A
        message the broker refused with HELLO_REQUIRED (restart) is sent
        again after reconnecting, within the same timeout.
        """
        _args.timeout(timeout)
        rid = self._session.next_id()
        frames = _publish.frames(self._session.limits, topic, payload,
                                 headers, reply_to, rid, True, retain, delay,
                                 deliver_at, msg_id)
        ok = self._call(CONFIRM, frames, rid, timeout,
                        f"publish on {topic!r}")
        return _publish_ack(ok)

    # ---- Subscribing ----

    def subscribe(self, pattern: Name, *, queue_group: Optional[Name] = None,
                  filter: Optional[Name] = None,
                  plugins: Sequence[PluginSpec] = (),
                  ack: Union[None, bool, AckOptions] = None,
                  callback: Optional[MessageCallback] = None,
                  stream: Union[None, str, StreamStart] = None,
                  consumer: Optional[str] = None,
                  deliver: Optional[Deliver] = None,
                  slow: Union[None, str, SlowConsumerOptions] = None,
                  timeout: float = 5.0) -> Subscription:
        """Subscribes and waits up to ``timeout`` seconds for the broker to
        accept.

        Args:
          pattern: a topic pattern; ``*`` matches one token, ``>`` one or
            more trailing tokens.
          queue_group: members of one group share the messages (each goes
            to one member).
          filter: an expression over headers the broker evaluates, e.g.
            ``"region == 'eu' && priority >= 5"`` (docs/plugins.md).
          plugins: PluginSpecs the broker runs on this subscription's
            deliveries, after the filter.
          ack: True or AckOptions: explicit acks (at-least-once); each
            message then has a delivery_id to ack()/nack()/in_progress().
          callback: called with each Message, in order, on a thread of this
            subscription's own (then next() is not used); without it, use
            next() or iterate. An exception it raises is logged.
          stream: consume a durable stream instead of live routing: its
            name, or a StreamStart. The broker replays the stream's records
            whose topic matches ``pattern`` (``">"``: all) from the
            consumer's position, then sends new ones as they become
            durable; each Message has stream_seq and timestamp_ms. With
            ``ack`` the records must be acknowledged (a durable consumer's
            position moves over acknowledged records); without it a record
            counts as acknowledged once sent. No queue_group, filter or
            plugins with a stream. After a reconnect the client subscribes
            again: a durable consumer resumes where the broker has it, an
            ephemeral one after the last record this subscription received.
          consumer: with a stream name: a durable consumer's name (kept by
            the broker across reconnects and restarts; one subscription at
            a time); None: ephemeral.
          deliver: with a stream name: where a new consumer starts:
            ``"all"`` (default), ``"new"``, a sequence number (int), or a
            datetime (records stored at or after it).
          slow: what the broker does when this client does not read fast
            enough: ``"drop-newest"`` (its default), ``"drop-oldest"``,
            ``"disconnect"``, or a SlowConsumerOptions with bounds (see
            there). Sent again when the client resubscribes after a
            reconnect. Ignored by the broker with ``ack`` or ``stream``.
        Raises:
          InvalidPattern, InvalidQueueGroup (locally); InvalidRequest
          (stream arguments that do not fit together, a bad ``slow``
          policy); InvalidFilter,
          InvalidPlugin, Forbidden (another client's inbox, a plugin the
          broker does not allow), TooManySubscriptions, InvalidRequest (ack
          options out of range; a durable consumer another subscription
          holds) from the broker; UnknownStream, InvalidStream (streams
          disabled) for a stream; Timeout (the subscription is withdrawn);
          ClientClosed, NotConnected, PendingLimit.
        """
        lim = self._session.limits
        pat, group, filt, specs, ack_opts, start, slow_opts = sub_args(
            pattern, queue_group, filter, plugins, ack, callback, stream,
            consumer, deliver, slow, timeout, lim)
        queue = SyncQueue(self._queue_max_messages, self._queue_max_bytes)
        state = SubState(self._session.next_id(), pat, group, filt,
                         specs, ack_opts, False, queue, start, slow_opts)
        state.check_size(lim)
        self._subscribe(state, timeout)
        if callback is not None:
            # Messages that came meanwhile wait in the queue for it.
            self._start_callbacks(queue, callback, state.sid)
        return Subscription(self, state, queue, callback is not None)

    def _start_callbacks(self, queue: SyncQueue, callback: MessageCallback,
                         sid: int) -> None:
        """Runs ``callback`` for each message of ``queue`` on a thread of the
        subscription's own, until the queue closes and is drained."""

        def run() -> None:
            while True:
                try:
                    msg = queue.pop(None)
                except MessagesDropped as e:
                    log.warning("sift: subscription %d: %s", sid, e)
                    continue
                except SiftError:
                    return  # closed (unsubscribed, client closed, refused)
                try:
                    callback(msg)
                except Exception:
                    log.exception("sift: a callback of subscription %d "
                                  "raised", sid)
        thread = threading.Thread(target=run, name=f"sift-cb-{sid}",
                                  daemon=True)
        with self._lock:
            self._callback_threads = [t for t in self._callback_threads
                                      if t.is_alive()]
            self._callback_threads.append(thread)
        thread.start()

    def _subscribe(self, state: SubState, timeout: float) -> None:
        rid = self._session.next_id()
        fut: "concurrent.futures.Future" = concurrent.futures.Future()
        with self._lock:
            self._session.add_sub(state)
            try:
                self._session.request(SUB, [state.encode(rid)], fut, rid,
                                      sid=state.sid)
            except SiftError:
                self._session.remove_sub(state.sid)
                raise
        self._wake()
        try:
            self._wait(fut, rid, timeout,
                       f"subscribe to {state.pattern.decode('latin-1')!r}")
        except Timeout:
            # The broker may take it after all: take it back.
            with self._lock:
                self._session.remove_sub(state.sid)
                try:
                    self._session.enqueue([_wire.unsub(0, state.sid)])
                except SiftError:
                    pass
            self._wake()
            raise

    def _unsubscribe(self, sid: int, timeout: float) -> None:
        rid = self._session.next_id()
        fut: "concurrent.futures.Future" = concurrent.futures.Future()
        with self._lock:
            self._session.remove_sub(sid)
            if self._session.closed or self._session.dead is not None:
                return
            self._session.request(UNSUB, [_wire.unsub(rid, sid)], fut, rid)
        self._wake()
        self._wait(fut, rid, timeout, "unsubscribe")

    # ---- Request/reply ----

    def _ensure_inbox(self, timeout: float) -> None:
        with self._inbox_lock:
            if self._session.inbox_sid:
                return
            prefix = self._session.limits.inbox_prefix
            state = SubState(self._session.next_id(),
                             (prefix + ".>").encode(), inbox=True)
            self._subscribe(state, timeout)
            with self._lock:
                if state.sid in self._session.subs:
                    self._session.inbox_sid = state.sid

    def request(self, topic: Name, payload: Payload = b"", *,
                headers: HeadersArg = None,
                timeout: float = 5.0) -> Message:
        """Publishes a request with a reply_to in this client's inbox and
        waits up to ``timeout`` seconds for the first reply.

        Raises: what publish() raises; Timeout if no reply came (there is no
        "no responders" signal: nobody listening also ends in Timeout). Its
        text names the request, and says so when the broker is unreachable
        (the client reconnecting): such a request may still be sent after
        the reconnect (its reply is then ignored).
        """
        _args.timeout(timeout)
        # Checked before anything is sent (the reply subscription included).
        _publish.frames(self._session.limits, topic, payload, headers, None,
                        0, False)
        deadline = time.monotonic() + timeout
        try:
            self._ensure_inbox(timeout)
        except Timeout:
            raise Timeout(request_timeout_message(
                topic, timeout, self._session.ready, inbox=True)) from None
        token = self._session.next_id()
        fut: "concurrent.futures.Future" = concurrent.futures.Future()
        reply_to = f"{self._session.limits.inbox_prefix}.{token}"
        frames = _publish.frames(self._session.limits, topic, payload,
                                 headers, reply_to, 0, False)
        with self._lock:
            self._session.enqueue(frames)
            self._session.requests[token] = fut
        self._wake()
        try:
            return fut.result(max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            with self._lock:
                self._session.requests.pop(token, None)
                ready = self._session.ready
            raise Timeout(request_timeout_message(topic, timeout,
                                                  ready)) from None

    # ---- Explicit acks ----

    def _ack_call(self, frames_for, message: Message,
                  timeout: Optional[float], what: str) -> None:
        check_message(message)
        _args.optional_seconds(timeout, "timeout")
        if not message.delivery_id:
            message._ackable()  # raises NotAckable
        if timeout is None:
            with self._lock:
                self._session.enqueue([frames_for(0)], epoch=message._epoch)
            self._wake()
            return
        rid = self._session.next_id()
        self._call(ACK, [frames_for(rid)], rid, timeout, what, resend=False,
                   epoch=message._epoch)

    def ack(self, message: Message, timeout: Optional[float] = None) -> None:
        """Acknowledges a delivery (see Message.ack()). Thread-safe; also
        from callbacks."""
        self._ack_call(lambda rid: _wire.ack(rid, [message.delivery_id]),
                       message, timeout, "ack")

    def nack(self, message: Message, delay: float = 0.0,
             timeout: Optional[float] = None) -> None:
        """Refuses a delivery: redelivered after ``delay`` seconds (0: the
        subscription's backoff). See Message.nack()."""
        check_message(message)
        delay_ms = seconds_to_ms(delay, "delay")
        self._ack_call(
            lambda rid: _wire.nack(rid, message.delivery_id, delay_ms),
            message, timeout, "nack")

    def in_progress(self, message: Message,
                    timeout: Optional[float] = None) -> None:
        """Restarts a delivery's ack wait. See Message.in_progress()."""
        self._ack_call(lambda rid: _wire.progress(rid, [message.delivery_id]),
                       message, timeout, "in_progress")

    # ---- Durable streams ----

    def add_stream(self, name: str, subjects: Union[str, Sequence[str]], *,
                   max_age: Optional[float] = None,
                   max_bytes: Optional[int] = None,
                   max_msgs: Optional[int] = None, fsync: str = "always",
                   dedup_window: Optional[float] = None,
                   segment_max_bytes: Optional[int] = None,
                   dedup_max_ids: Optional[int] = None,
                   timeout: float = 5.0) -> StreamInfo:
        """Creates a durable stream (docs/delivery.md §3) and returns it as
        the broker holds it (defaults filled in). The same settings again
        are OK and change nothing. The broker answers once the retained
        values and delayed messages it already held for the stream's topics
        are on disk (docs/delivery.md §5, §6); many of them can outlast
        ``timeout``, and then the stream may exist with those still being
        written: the same call again is answered once they are.

        Args:
          name: 1 to 64 characters of ``[A-Za-z0-9_-]``.
          subjects: a topic pattern, or a list of them (``*`` and ``>``
            allowed): publishes on matching topics are appended.
          max_age: seconds a record is kept; None: unlimited.
          max_bytes, max_msgs: bounds of its size (segment files) and its
            records; None: unlimited. Beyond a bound, the oldest go.
          fsync: ``"always"`` (each confirmed publish waits for its fsync,
            with group commit), ``"never"`` (left to the OS) or ``"<N>ms"``
            (at most N ms after the write).
          dedup_window: seconds within which a ``msg_id`` is stored once;
            None: the broker's default (2 minutes); 0 is refused
            (InvalidRequest: the protocol's 0 is that default, and a stream
            without dedup is made in siftd's config).
          segment_max_bytes: segment file rotation size; None: 64 MiB.
          dedup_max_ids: the message ids the stream remembers, at most
            (1 to 100,000,000; None: the broker's 100,000). The oldest is
            forgotten first even within dedup_window, so a ``msg_id`` is
            deduplicated only among the last dedup_max_ids: set it above the
            ids you may publish (or republish) within one window. Each id
            costs the broker memory (docs/delivery.md §3).
          timeout: seconds to wait for the broker's answer.
        Raises:
          InvalidStream: bad settings, the name taken with other settings,
            or streams disabled (siftd without ``--data_dir``).
          InvalidRequest (locally): a negative or out-of-range value.
          Timeout, ClientClosed, NotConnected (the answer was lost with the
          connection: the stream may or may not have been made).
        Thread-safe.
        """
        fields = stream_config_fields(name, subjects, max_age, max_bytes,
                                      max_msgs, fsync, dedup_window,
                                      segment_max_bytes, dedup_max_ids)
        rid = self._session.next_id()
        infos = self._call(
            STREAM, [_wire.stream_request(rid, _wire.STREAM_ADD, **fields)],
            rid, timeout, f"add_stream {name!r}")
        if infos:
            return StreamInfo.from_wire(infos[0])
        return self.stream_info(name, timeout=timeout)

    def stream_info(self, name: str, *, timeout: float = 5.0) -> StreamInfo:
        """One stream's settings, counts and durable consumers, waiting up
        to ``timeout`` seconds. Raises UnknownStream, InvalidStream (streams
        disabled), Timeout, ClientClosed, NotConnected. Thread-safe."""
        rid = self._session.next_id()
        infos = self._call(
            STREAM, [_wire.stream_request(rid, _wire.STREAM_INFO,
                                          _validate.to_bytes(name, "name"))],
            rid, timeout, f"stream_info {name!r}")
        if not infos:
            raise UnknownStream(f"the broker answered no stream for {name!r}")
        return StreamInfo.from_wire(infos[0])

    def streams(self, *, timeout: float = 5.0) -> List[StreamInfo]:
        """Every stream, as stream_info() shows it (empty if none), waiting
        up to ``timeout`` seconds. Raises InvalidStream (streams disabled),
        Timeout, ClientClosed, NotConnected. Thread-safe."""
        rid = self._session.next_id()
        infos = self._call(
            STREAM, [_wire.stream_request(rid, _wire.STREAM_LIST)], rid,
            timeout, "streams")
        return [StreamInfo.from_wire(i) for i in infos]

    def delete_stream(self, name: str, *, timeout: float = 5.0) -> None:
        """Deletes a stream with its records and consumers, waiting up to
        ``timeout`` seconds. Raises UnknownStream, InvalidStream (streams
        disabled), Timeout, ClientClosed, NotConnected. Thread-safe."""
        rid = self._session.next_id()
        self._call(STREAM, [_wire.stream_request(
            rid, _wire.STREAM_DELETE, _validate.to_bytes(name, "name"))], rid,
            timeout, f"delete_stream {name!r}")

    def delete_consumer(self, stream: str, consumer: str, *,
                        timeout: float = 5.0) -> None:
        """Deletes durable consumer ``consumer`` of ``stream`` (its position
        is forgotten), waiting up to ``timeout`` seconds. Raises
        UnknownStream (no such stream or consumer), InvalidStream (streams
        disabled), Timeout, ClientClosed, NotConnected. Thread-safe."""
        rid = self._session.next_id()
        self._call(STREAM, [_wire.stream_request(
            rid, _wire.CONSUMER_DELETE, _validate.to_bytes(stream, "stream"),
            consumer=_validate.to_bytes(consumer, "consumer"))], rid, timeout,
            f"delete_consumer {stream!r} {consumer!r}")

    def fetch(self, stream: Union[str, StreamStart], batch: int = 1, *,
              consumer: Optional[str] = None, wait: float = 0.0,
              deliver: Optional[Deliver] = None,
              pattern: Optional[Name] = None,
              ack: Union[None, bool, AckOptions] = None,
              timeout: float = 5.0) -> List[Message]:
        """Polls a stream (JetStream's pull consumer fetch): returns up to
        ``batch`` records, in stream order, as soon as that many are there,
        or after ``wait`` seconds with what there is (possibly none).

        Args:
          stream: the stream's name, or a StreamStart (then no consumer or
            deliver here).
          batch: most records to return, 1 to 10000.
          consumer: a durable consumer's name: its position is kept across
            fetches, connections and broker restarts. None: a one-off read
            from ``deliver`` that keeps no state.
          wait: seconds the broker waits for ``batch`` records (0: answer
            with what is there now); millisecond precision.
          deliver: where reading starts (a named consumer: only when the
            broker creates it): ``"all"`` (default), ``"new"``, a sequence
            number (int), or a datetime.
          pattern: only records whose topic matches; None: all.
          ack: True or AckOptions (named consumers only): each record must
            be acknowledged (message.ack()), else the broker hands it out
            again after the ack wait, on a later fetch. None: a record counts
            as acknowledged once sent.
          timeout: seconds to wait for the answer beyond ``wait``: the call
            returns within ``wait + timeout``.
        Returns: a list of Messages, each with stream_seq and timestamp_ms
          (with ``ack``, a delivery_id to ack()).
        Raises:
          UnknownStream, InvalidStream (streams disabled), InvalidRequest
          (batch out of range, ack without a consumer, ...), InvalidPattern;
          Timeout (records the broker sent meanwhile are lost to this call:
          without ``ack`` they count as acknowledged), ClientClosed,
          NotConnected.
        Thread-safe: several fetches may run at once, also from callbacks.
        """
        _args.timeout(timeout)
        start, batch_n, wait_ms, pat, ack_opts = _fetch_args(
            self._session.limits, stream, batch, consumer, wait, deliver,
            pattern, ack)
        sid = self._session.next_id()
        rid = self._session.next_id()
        frames = [_wire.fetch(rid, sid, start, batch_n, wait_ms, pat,
                              ack_opts)]
        fut: "concurrent.futures.Future" = concurrent.futures.Future()
        with self._lock:
            self._session.fetch(frames, fut, rid, sid)
        self._wake()
        return self._wait(fut, rid, wait + timeout,
                          f"fetch from {start.stream!r}")

    # ---- Broker administration ----

    def stats(self, timeout: float = 5.0):
        """The broker's counters (a ``sift_pb2.StatsReply``; fields in
        docs/protocol.md §11, e.g. ``streams``: streams open now), waiting
        up to ``timeout`` seconds.
        Raises Timeout, ClientClosed, NotConnected."""
        rid = self._session.next_id()
        return self._call(STATS, [_wire.stats(rid)], rid, timeout, "stats")

    def reload(self, timeout: float = 5.0) -> None:
        """Asks the broker to re-read the plugin sections of its config file
        (as SIGHUP does), waiting up to ``timeout`` seconds. Raises
        InvalidConfig (invalid, or the broker has no config file; the old
        config stays), Timeout."""
        rid = self._session.next_id()
        self._call(RELOAD, [_wire.reload(rid)], rid, timeout, "reload")

    def declare(self, pattern: str, queue_group: str, ack=None,
                timeout: float = 5.0) -> None:
        """Declares a work queue (AMQP's queue.declare; protocol.md §6.2):
        the broker keeps queue group ``queue_group`` on ``pattern`` alive
        with explicit acks, so messages routed to it wait in its backlog (up
        to max_queued) while no worker is subscribed. Idempotent; lasts for
        the broker's life. ``ack`` (AckOptions) is the group's retry policy
        if it has none yet; workers must subscribe with the same
        max_deliver, max_queued and backoff. Waits up to ``timeout``
        seconds. Raises InvalidPattern, InvalidQueueGroup, InvalidRequest,
        Timeout."""
        rid = self._session.next_id()
        self._call(RELOAD, [declare_frame(rid, pattern, queue_group, ack,
                                          self._session.limits)],
                   rid, timeout, f"declare {queue_group!r} on {pattern!r}")

    # ---- State ----

    @property
    def limits(self) -> Limits:
        """The broker's limits and this session's identity (from WELCOME)."""
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
        """Deliveries the broker dropped for this client because it did not
        read fast enough (SLOW_CONSUMER notices; may lag)."""
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

    def close(self, timeout: float = 2.0) -> None:
        """Sends what is queued (for at most ``timeout`` seconds), says BYE
        and stops the I/O thread. Waiting calls fail with ClientClosed,
        subscriptions end (their queued messages can still be taken).
        Callback threads finish the messages queued before the close (waited
        for up to ``timeout`` seconds more). Idempotent; any thread."""
        _args.timeout(timeout)
        with self._lock:
            first = not self._session.closed
            if first:
                self._close_deadline = time.monotonic() + max(0.0, timeout)
                self._session.closed = True  # no more user traffic
        self._wake()
        if threading.current_thread() is not self._thread:
            self._thread.join(max(0.0, timeout) + 5.0)
        self._closed_event.wait(max(0.0, timeout) + 5.0)
        with self._lock:
            self._session.shutdown(ClientClosed("the client closed"))
        if first:
            # Callbacks finish what was queued before the close (bounded).
            me = threading.current_thread()
            join_until = time.monotonic() + max(0.0, timeout)
            for t in list(self._callback_threads):
                if t is not me:
                    t.join(max(0.0, join_until - time.monotonic()))
            if self._dispatcher is not None:
                self._dispatcher.stop(max(0.0, timeout))

    def __enter__(self) -> "Client":
        """``with Client(...) as c:`` closes the client on exit."""
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- Internals ----

    def _report(self, exc: SiftError) -> None:
        """Under _lock: hands an error no caller waits for to user code."""
        cb = self._error_callback
        if cb is None:
            log.warning("sift: %s", exc)
            return
        if self._dispatcher is None:
            self._dispatcher = _Dispatcher()
        self._dispatcher.submit(lambda: cb(exc))

    def _call(self, kind: str, frames: List[bytes], rid: int,
              timeout: float, what: str, resend: bool = True,
              epoch: int = 0) -> Any:
        _args.timeout(timeout)  # before anything is sent
        fut: "concurrent.futures.Future" = concurrent.futures.Future()
        with self._lock:
            self._session.request(kind, frames, fut, rid, resend=resend,
                                  epoch=epoch)
        self._wake()
        return self._wait(fut, rid, timeout, what)

    def _wait(self, fut: "concurrent.futures.Future", rid: int,
              timeout: float, what: str) -> Any:
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            with self._lock:
                self._session.forget(rid)
                ready = self._session.ready
            state = "" if ready else " (not connected: reconnecting)"
            raise Timeout(f"{what}: no answer from the broker within "
                          f"{timeout} s{state}") from None

    def _wake(self) -> None:
        if self._wake_pending:
            return
        self._wake_pending = True
        try:
            os.eventfd_write(self._wake_fd, 1)
        except OSError:
            pass  # closed

    # ---- The I/O thread ----

    def _run(self) -> None:
        try:
            self._loop()
        except Exception:
            log.exception("sift: the I/O thread failed")
            with self._lock:
                self._session.die(NotConnected("the client's I/O thread "
                                               "failed (see the log)"))
        finally:
            self._close_sockets()
            self._closed_event.set()

    def _loop(self) -> None:
        sock, monitor, session = self._sock, self._monitor, self._session
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        poller.register(monitor, zmq.POLLIN)
        poller.register(self._wake_fd, zmq.POLLIN)
        sending: List[List[bytes]] = []  # taken, not yet accepted by ZeroMQ
        pollout = False
        while True:
            with self._lock:
                deadline = session.next_deadline()
                if self._close_deadline is not None:
                    deadline = min(deadline, time.monotonic() + 0.01)
            wait_ms = max(0, int((deadline - time.monotonic()) * 1000) + 1)
            if sending and not pollout:
                poller.modify(sock, zmq.POLLIN | zmq.POLLOUT)
                pollout = True
            elif not sending and pollout:
                poller.modify(sock, zmq.POLLIN)
                pollout = False
            events = dict(poller.poll(wait_ms))
            if self._wake_fd in events:
                # Drain first, then clear the flag, then take the queue: a
                # caller that wakes us in between either finds the flag set
                # (and its command is taken below) or writes again after it
                # is cleared. Cleared first, a wake written between the two
                # steps was eaten by this read and left the flag set for
                # good: every later wake was skipped (sends waited for the
                # 5 s ping tick).
                try:
                    os.eventfd_read(self._wake_fd)
                except (BlockingIOError, OSError):
                    pass
                self._wake_pending = False
            # Socket events before data: a reconnect's CONNECTED is queued
            # before anything the new connection brings.
            self._read_monitor()
            self._read_socket()
            now = time.monotonic()
            with self._lock:
                session.tick(now)
                if not sending:
                    sending = session.take_sendable()
            sending = self._send_all(sending)
            if self._close_deadline is not None and self._finish_close(
                    sending, now):
                return

    def _finish_close(self, sending: List[List[bytes]], now: float) -> bool:
        """While closing: True once what was queued is sent (or the close
        budget is spent, or there is no session to send it to), after
        saying BYE."""
        session = self._session
        assert self._close_deadline is not None
        with self._lock:
            drained = session.outbox_drained() and not sending
            if not (drained or not session.ready
                    or now >= self._close_deadline):
                return False
            was_ready = session.ready
            session.ready = False
        if was_ready:
            self._send_all([[_wire.bye()]])
            # What ZeroMQ holds (the flushed messages, the BYE) gets the rest
            # of the budget to go out when the socket closes.
            linger = int((self._close_deadline - time.monotonic()) * 1000)
            self._sock.setsockopt(zmq.LINGER, max(linger, 100))
        return True

    def _send_all(self, frames_list: List[List[bytes]]) -> List[List[bytes]]:
        """Sends until ZeroMQ would block; returns what is left."""
        sock = self._sock
        for i, frames in enumerate(frames_list):
            try:
                sock.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                return frames_list[i:]
            except zmq.ZMQError as e:
                log.warning("sift: send failed: %s", e)
        return []

    def _read_monitor(self) -> None:
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            except zmq.ZMQError:
                return
            with self._lock:
                if event["event"] == zmq.EVENT_DISCONNECTED:
                    self._session.on_disconnected()
                elif event["event"] == zmq.EVENT_CONNECTED:
                    self._session.on_connected()

    def _read_socket(self) -> None:
        sock = self._sock
        for _ in range(16):
            received = []
            for _ in range(256):
                try:
                    received.append(sock.recv_multipart(zmq.NOBLOCK))
                except zmq.Again:
                    break
            if received:
                with self._lock:
                    for frames in received:
                        self._session.on_frames(frames)
            if len(received) < 256:
                return

    def _close_sockets(self) -> None:
        try:
            self._sock.disable_monitor()
        except zmq.ZMQError:
            pass
        self._monitor.close(0)
        self._sock.close()
