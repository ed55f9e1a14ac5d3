"""A kombu transport on sift, so Celery can use sift as its broker
(docs/python.md, "Celery").

    import sift.kombu_transport          # registers the "sift" scheme
    app = Celery("proj", broker="sift://127.0.0.1:7440")

or, without the import, ``broker_transport="sift.kombu_transport:Transport"``
next to ``broker_url="sift://127.0.0.1:7440"``.

Mapping (docs/protocol.md §6.2, §8.2):

- A kombu queue ``Q`` is the sift topic ``<topic_prefix>.<Q>`` (default
  prefix ``celery.q``) consumed by the queue group ``<group_prefix><Q>``
  (default ``kombu:``) with explicit acks: one subscription per
  basic_consume, ``max_in_flight`` = the channel's prefetch_count (Celery:
  concurrency x worker_prefetch_multiplier).
- basic_ack -> ACK; basic_reject(requeue=True) -> NACK (redelivered at once,
  to any member); basic_reject(requeue=False) -> ACK (discarded, as AMQP
  without a dead-letter exchange); basic_recover -> NACK of everything held.
- A message whose headers carry a Celery ``eta`` in the future (countdown,
  eta, retries) is published with ``deliver_at``: the broker holds it, and no
  worker sees it before it is due.
- The message (body, headers, properties: kombu's dict) travels as a JSON
  envelope in the payload, as kombu's Redis transport stores it; sift headers
  ``kombu-queue``, ``celery-task`` and ``celery-id`` repeat a few fields for
  filters and ``python3 -m sift sub``.
- While a worker holds a delivery (prefetched or running) a heartbeat thread
  sends PROGRESS for it every ``progress_interval`` seconds (default
  ack_wait / 3): a task is redelivered only when it is NACKed, when the
  worker's connection to the broker is gone (killed, network), or when the
  worker stops renewing (its process hangs) for a whole ``ack_wait``. There
  is no visibility timeout.

Transport options (``broker_transport_options``): ack_wait (s, default 30),
progress_interval (s, default ack_wait/3), max_deliver (default: the
broker's, 5; 0 = unlimited), backoff_initial, backoff_multiplier,
backoff_max, backoff_jitter, max_queued (the group's, see AckOptions),
topic_prefix, group_prefix, confirm_publish (default True: wait for the
broker's OK), connect_timeout (s, default Celery's broker_connection_timeout, 4), publish_timeout (s, default 10),
client_name.
"""

import hashlib
import logging
import math
import queue as _queue
import re
import socket
import threading
import time
from datetime import datetime, timezone
from typing import Any, Dict, Optional, Tuple

from kombu.transport import TRANSPORT_ALIASES, virtual
from kombu.utils.json import dumps, loads

import sift

logger = logging.getLogger("sift.kombu")

DEFAULT_PORT = 7440

_TOKEN_OK = re.compile(r"^[A-Za-z0-9_\-:]{1,48}$")


def queue_token(name: str) -> str:
    """The topic token and group suffix for a kombu queue name: the name
    itself when it is made of ``A-Z a-z 0-9 _ - :`` (at most 48), else a
    readable part plus a hash (so every name maps to a distinct token)."""
    if _TOKEN_OK.match(name):
        return name
    clean = re.sub(r"[^A-Za-z0-9_\-:]", "_", name)[:32]
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:12]
    return f"{clean}-{digest}"


def eta_seconds(headers: Optional[Dict[str, Any]]) -> Optional[float]:
    """The Unix time of a Celery message's ``eta`` header (protocol 2), or
    None. A naive eta is taken as UTC (Celery's enable_utc default)."""
    if not headers:
        return None
    eta = headers.get("eta")
    if not eta:
        return None
    try:
        if isinstance(eta, datetime):
            when = eta
        else:
            when = datetime.fromisoformat(str(eta))
    except ValueError:
        logger.warning("sift: unparsable eta %r: published at once", eta)
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


class QoS(virtual.QoS):
    """Keeps kombu's bookkeeping of unacked messages; never restores them
    by republishing: the broker redelivers what a consumer held when it
    unsubscribes or disconnects (republishing would duplicate them)."""

    restore_at_shutdown = False

    def restore_unacked_once(self, stderr=None):  # noqa: D102
        self._on_collect.cancel()
        self._delivered.clear()
        self._dirty.clear()


class Channel(virtual.Channel):
    """One kombu channel on the transport's sift client."""

    QoS = QoS
    do_restore = False
    supports_fanout = False
    # Bodies stay as kombu encodes them for a JSON envelope.
    body_encoding = "base64"

    def __init__(self, connection, **kwargs):
        super().__init__(connection, **kwargs)
        self._subs: Dict[str, Any] = {}        # consumer_tag -> Subscription
        self._cancelled: Dict[str, Any] = {}   # cancelled, not yet closed
        self._no_ack: Dict[str, bool] = {}     # consumer_tag -> no_ack
        self._inflight: Dict[str, sift.Message] = {}  # delivery_tag -> msg
        self._lock = threading.Lock()

    @property
    def client(self) -> "sift.Client":
        return self.connection.sift_client()

    # ---- queues (the broker creates topics and groups on demand) ----

    def _new_queue(self, queue, **kwargs):
        # A declared queue keeps tasks published before any worker
        # subscribes, or while none is connected (protocol.md §6.2).
        t = self.connection
        self.client.declare(t.topic_for(queue), t.group_for(queue),
                            t.ack_options(0), timeout=t.publish_timeout)

    def _has_queue(self, queue, **kwargs):
        return True

    def _delete(self, queue, *args, **kwargs):
        pass

    def _size(self, queue):
        return 0  # the broker does not report a group's backlog per topic

    def _purge(self, queue):
        return 0  # sift has no purge of a group's backlog

    def _get(self, queue, timeout=None):
        # basic_get (polling) is not supported: consume instead.
        raise _queue.Empty()

    # ---- publishing ----

    def _put(self, queue, message, **kwargs):
        t = self.connection
        topic = t.topic_for(queue)
        headers = message.get("headers") or {}
        sift_headers = {"kombu-queue": queue}
        for key, field in (("celery-task", "task"), ("celery-id", "id")):
            value = headers.get(field)
            if isinstance(value, str) and value:
                sift_headers[key] = value[:256]
        payload = dumps(message)
        deliver_at = None
        eta = eta_seconds(headers)
        if eta is not None and eta > time.time() + 0.001:
            at_ms = math.ceil(eta * 1000)  # never before the eta
            limit_ms = self.client.limits.max_delay_ms
            now_ms = time.time() * 1000
            if limit_ms and at_ms - now_ms > limit_ms - 1000:
                # Beyond the broker's bound: deliver at the bound; Celery
                # then holds it in the worker until its eta.
                at_ms = int(now_ms + limit_ms - 1000)
            deliver_at = at_ms / 1000.0
        if t.confirm_publish:
            self.client.publish_confirmed(topic, payload, headers=sift_headers,
                                          deliver_at=deliver_at,
                                          timeout=t.publish_timeout)
        else:
            self.client.publish(topic, payload, headers=sift_headers,
                                deliver_at=deliver_at)

    # ---- consuming ----

    def basic_consume(self, queue, no_ack, callback, consumer_tag, **kwargs):
        super().basic_consume(queue, no_ack, callback, consumer_tag, **kwargs)
        t = self.connection
        opts = t.ack_options(self.qos.prefetch_count)
        inbox = t.inbox

        def on_message(msg, _tag=consumer_tag, _q=queue):
            t.hold(msg)  # renewed from now on, not from kombu's callback
            inbox.put((self, _q, _tag, msg))

        sub = self.client.subscribe(t.topic_for(queue),
                                    queue_group=t.group_for(queue),
                                    ack=opts, callback=on_message,
                                    timeout=t.connect_timeout)
        self._subs[consumer_tag] = sub
        self._no_ack[consumer_tag] = bool(no_ack)
        t.start_heartbeat()

    def basic_cancel(self, consumer_tag):
        # Celery cancels its task consumer first on a warm shutdown and acks
        # the tasks still running afterwards. Unsubscribing now would make
        # the broker redeliver those running tasks elsewhere (twice). So the
        # subscription stays until the channel closes: deliveries arriving
        # meanwhile are parked (held and renewed, never handed to kombu)
        # and the broker redelivers them, with everything else unacked,
        # when the channel or the connection closes.
        sub = self._subs.pop(consumer_tag, None)
        super().basic_cancel(consumer_tag)
        if sub is not None:
            self._cancelled[consumer_tag] = sub

    def _unsubscribe_all(self) -> None:
        subs = list(self._subs.values()) + list(self._cancelled.values())
        self._subs.clear()
        self._cancelled.clear()
        self._no_ack.clear()
        for sub in subs:
            # The broker redelivers what this subscription held, at once.
            try:
                sub.unsubscribe(timeout=self.connection.connect_timeout)
            except sift.SiftError as exc:
                logger.debug("sift: unsubscribe failed: %r", exc)

    def deliver(self, queue: str, consumer_tag: str, msg: "sift.Message"):
        """Hands one sift delivery to kombu's callback (consuming thread)."""
        try:
            self._deliver(queue, consumer_tag, msg)
        finally:
            # From here on the channel holds it (its _inflight), or it was
            # acknowledged, or the broker redelivers it (closed channel).
            self.connection.release(msg)

    def _deliver(self, queue: str, consumer_tag: str, msg: "sift.Message"):
        if self.closed:
            return  # unsubscribed: the broker redelivers it elsewhere
        if consumer_tag not in self._subs:
            if consumer_tag in self._cancelled:
                with self._lock:  # parked until the channel closes
                    self._inflight[f"parked.{msg.delivery_id}"] = msg
            return
        try:
            envelope = loads(msg.payload)
            props = envelope["properties"]
        except (ValueError, KeyError, TypeError) as exc:
            logger.error("sift: dropping a message on %s that is not a kombu "
                         "envelope: %r", msg.topic, exc)
            self._settle(msg)
            return
        tag = f"{self.connection.session_tag()}.{msg.delivery_id}"
        props["delivery_tag"] = tag
        redelivered = msg.attempt > 1
        envelope["redelivered"] = redelivered
        info = props.setdefault("delivery_info", {})
        info["redelivered"] = redelivered
        if self._no_ack.get(consumer_tag):
            self._settle(msg)
        else:
            with self._lock:
                self._inflight[tag] = msg
        callback = self.connection._callbacks.get(queue)
        if callback is None:
            self._release(tag, requeue=True)
            return
        callback(envelope)

    def _settle(self, msg: "sift.Message", requeue: bool = False) -> None:
        """ACK (or, requeue, NACK) one delivery, fire-and-forget. One of an
        earlier session (a reconnect came between; its id was that
        session's) raises UnknownDelivery at once: nothing to do, the broker
        redelivers it."""
        try:
            if requeue:
                self.client.nack(msg, delay=0.001)  # 0 would mean the backoff
            else:
                self.client.ack(msg)
        except sift.UnknownDelivery as exc:
            logger.info("sift: not settled, the broker redelivers it: %s",
                        exc)

    def _pop(self, delivery_tag) -> Optional["sift.Message"]:
        with self._lock:
            return self._inflight.pop(delivery_tag, None)

    def _release(self, delivery_tag, requeue: bool) -> None:
        msg = self._pop(delivery_tag)
        if msg is None:
            return
        self._settle(msg, requeue=requeue)

    def held(self):
        """The sift messages this channel holds unacknowledged."""
        with self._lock:
            return list(self._inflight.values())

    def basic_ack(self, delivery_tag, multiple=False):
        super().basic_ack(delivery_tag, multiple)
        msg = self._pop(delivery_tag)
        logger.debug("sift: ack %s (%s)", delivery_tag,
                     "held" if msg is not None else "not held")
        if msg is not None:
            self._settle(msg)

    def basic_reject(self, delivery_tag, requeue=False):
        # Only kombu's bookkeeping here: requeueing is the broker's NACK.
        self.qos.reject(delivery_tag, requeue=False)
        self._release(delivery_tag, requeue=requeue)

    def basic_recover(self, requeue=False):
        if not requeue:
            raise NotImplementedError("recover(requeue=False) is not "
                                      "supported")
        with self._lock:
            tags = list(self._inflight)
        for tag in tags:
            self.qos.reject(tag, requeue=False)
            self._release(tag, requeue=True)

    def close(self):
        logger.debug("sift: channel %s closes", self.channel_id)
        if not self.closed:
            for tag in list(self._subs):
                super().basic_cancel(tag)
            self._unsubscribe_all()
            with self._lock:
                self._inflight.clear()
        super().close()


class Transport(virtual.Transport):
    """kombu transport for ``sift://HOST:PORT``."""

    Channel = Channel
    default_port = DEFAULT_PORT
    driver_type = "sift"
    driver_name = "sift"
    polling_interval = None

    implements = virtual.Transport.implements.extend(
        asynchronous=False,
        exchange_type=frozenset(["direct", "topic"]),
        heartbeats=False,
    )

    connection_errors = virtual.Transport.connection_errors + (
        sift.NotConnected, sift.Timeout, sift.TooManyClients, socket.timeout)
    channel_errors = virtual.Transport.channel_errors + (
        sift.InvalidTopic, sift.InvalidQueueGroup, sift.InvalidRequest,
        sift.PendingLimit)

    def __init__(self, client, **kwargs):
        super().__init__(client, **kwargs)
        opts = client.transport_options or {}
        self.options = opts
        self.ack_wait = float(opts.get("ack_wait", 30.0))
        self.progress_interval = float(
            opts.get("progress_interval", self.ack_wait / 3.0))
        self.topic_prefix = str(opts.get("topic_prefix", "celery.q"))
        self.group_prefix = str(opts.get("group_prefix", "kombu:"))
        self.confirm_publish = bool(opts.get("confirm_publish", True))
        self.connect_timeout = float(
            opts.get("connect_timeout", client.connect_timeout or 5.0))
        self.publish_timeout = float(opts.get("publish_timeout", 10.0))
        self.inbox: "_queue.Queue[Tuple[Channel, str, str, Any]]" = \
            _queue.Queue()
        self._sift: Optional[sift.Client] = None
        self._sift_lock = threading.Lock()
        self._hb_thread: Optional[threading.Thread] = None
        self._hb_stop = threading.Event()
        # Deliveries received from the broker and not yet handed to a
        # channel: they wait in the inbox, or in a batch drain_events took
        # while Celery's consumer is blocked on a busy pool. Keyed by id().
        self._received: Dict[int, "sift.Message"] = {}
        self._received_lock = threading.Lock()

    # ---- the sift client ----

    def endpoint(self) -> str:
        c = self.client
        host = c.hostname or "127.0.0.1"
        if host.startswith("ipc://") or host.startswith("tcp://"):
            return host
        if host in ("localhost",):
            host = "127.0.0.1"
        return f"tcp://{host}:{c.port or DEFAULT_PORT}"

    def sift_client(self) -> "sift.Client":
        with self._sift_lock:
            if self._sift is None or self._sift.is_closed:
                self._sift = sift.Client(
                    self.endpoint(),
                    name=str(self.options.get("client_name", "kombu")),
                    connect_timeout=self.connect_timeout,
                    error_callback=self._on_error)
            return self._sift

    def session_tag(self) -> int:
        c = self._sift
        return c.reconnects if c is not None else 0

    @staticmethod
    def _on_error(exc: "sift.SiftError") -> None:
        if isinstance(exc, sift.UnknownDelivery):
            # An ack/progress for a delivery the broker no longer holds for
            # us (a reconnect made it redeliver): nothing to do.
            logger.debug("sift: %s", exc)
        else:
            logger.warning("sift: %s", exc)

    def establish_connection(self):
        self.sift_client()  # connects now: errors are connection errors
        return super().establish_connection()

    def close_connection(self, connection):
        self._hb_stop.set()
        try:
            super().close_connection(connection)
        finally:
            with self._received_lock:
                self._received.clear()
            with self._sift_lock:
                client, self._sift = self._sift, None
            if client is not None:
                client.close()
            t = self._hb_thread
            if t is not None and t is not threading.current_thread():
                t.join(2.0)

    # ---- names and options ----

    def topic_for(self, queue: str) -> str:
        return f"{self.topic_prefix}.{queue_token(queue)}"

    def group_for(self, queue: str) -> str:
        return (self.group_prefix + queue_token(queue))[:64]

    def ack_options(self, prefetch_count: int) -> "sift.AckOptions":
        o = self.options

        def opt(name, conv):
            v = o.get(name)
            return None if v is None else conv(v)

        return sift.AckOptions(
            ack_wait=self.ack_wait,
            max_in_flight=int(prefetch_count) if prefetch_count else None,
            max_deliver=opt("max_deliver", int),
            backoff_initial=opt("backoff_initial", float),
            backoff_multiplier=opt("backoff_multiplier", float),
            backoff_max=opt("backoff_max", float),
            backoff_jitter=opt("backoff_jitter", float),
            max_queued=opt("max_queued", int))

    # ---- the PROGRESS heartbeat ----

    def hold(self, msg: "sift.Message") -> None:
        """Counts a delivery as held from the moment the client receives it
        (any thread): the heartbeat renews it until a channel takes it."""
        with self._received_lock:
            self._received[id(msg)] = msg

    def release(self, msg: "sift.Message") -> None:
        """The delivery left the inbox (see Channel.deliver)."""
        with self._received_lock:
            self._received.pop(id(msg), None)

    def held(self):
        """Every delivery this transport holds unacknowledged: received and
        not yet handed over, plus what each channel holds, once each."""
        with self._received_lock:
            out = dict(self._received)
        for channel in list(self.channels):
            if isinstance(channel, Channel):
                for m in channel.held():
                    out.setdefault(id(m), m)
        return list(out.values())

    def start_heartbeat(self) -> None:
        if self._hb_thread is not None:
            return
        self._hb_stop.clear()
        self._hb_thread = threading.Thread(target=self._heartbeat,
                                           name="sift-kombu-progress",
                                           daemon=True)
        self._hb_thread.start()

    def _heartbeat(self) -> None:
        while not self._hb_stop.wait(self.progress_interval):
            client = self._sift
            if client is None or client.is_closed:
                continue
            for msg in self.held():
                try:
                    client.in_progress(msg)
                except sift.SiftError as exc:
                    logger.debug("sift: progress failed: %r", exc)

    # ---- consuming ----

    def drain_events(self, connection, timeout=None):
        try:
            item = self.inbox.get(timeout=timeout)
        except _queue.Empty:
            raise socket.timeout() from None
        items = [item]
        while len(items) < 64:  # what else is there, delivered in order
            try:
                items.append(self.inbox.get_nowait())
            except _queue.Empty:
                break
        for channel, queue, tag, msg in items:
            channel.deliver(queue, tag, msg)

    @property
    def default_connection_params(self):
        return {"port": self.default_port, "hostname": "127.0.0.1"}


def _flush_acks_step():
    """A Celery consumer bootstep that performs the consumer's pending
    operations (acks of tasks that finished meanwhile) when the consumer
    stops. With a synchronous transport Celery's synloop runs them, but not
    after a warm shutdown began: tasks finishing during the shutdown would
    stay unacknowledged and the broker would redeliver them once the
    connection closes, running them twice (as on any broker without an event
    loop). None if Celery is not installed."""
    try:
        from celery import bootsteps
    except ImportError:  # kombu without Celery
        return None

    class FlushAcks(bootsteps.StartStopStep):
        requires = ("celery.worker.consumer.tasks:Tasks",)
        name = "sift.kombu_transport.FlushAcks"

        def start(self, c):
            pass

        def _flush(self, c):
            perform = getattr(c, "perform_pending_operations", None)
            if perform is not None:
                perform()

        def stop(self, c):
            self._flush(c)

        def shutdown(self, c):
            self._flush(c)

    return FlushAcks


def _on_celeryd_init(sender=None, instance=None, **kwargs):
    app = getattr(instance, "app", None)
    step = _flush_acks_step()
    if app is None or step is None:
        return
    try:
        transport = app.connection_for_read().transport_cls
    except Exception:  # noqa: BLE001  (not ours to judge)
        return
    if transport == "sift" or (isinstance(transport, str) and
                               "kombu_transport" in transport):
        app.steps["consumer"].add(step)


def _hook_celery() -> None:
    try:
        from celery.signals import celeryd_init
    except ImportError:
        return
    celeryd_init.connect(_on_celeryd_init, weak=False)


def register() -> None:
    """Makes ``sift://`` URLs resolve to this transport (done on import)."""
    TRANSPORT_ALIASES.setdefault("sift", "sift.kombu_transport:Transport")


register()
_hook_celery()
