"""A Django Channels channel layer on sift (Debian's python3-django-channels 4.0).

    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "sift.channels.SiftChannelLayer",
            "CONFIG": {"endpoint": "tcp://127.0.0.1:7440", "prefix": "asgi"},
        },
    }

Design (docs/python.md, "Django Channels", says the same for users):

- **One sift connection per event loop.** An ``AsyncClient`` belongs to the
  loop it connected on, and asgiref's ``async_to_sync`` may run coroutines
  on loops of its own, so the layer keeps one ``_LoopLayer`` per running
  loop, created on first use and closed when its loop closes (as
  channels_redis does). Each ``_LoopLayer`` has a process-unique id (a
  random hex string), the ``client prefix`` of its channel names.
- **Process-specific channels** (``new_channel()``: ``<prefix>.<id>!<rand>``)
  live in the memory of the ``_LoopLayer`` that made them: one bounded
  buffer per channel. That ``_LoopLayer`` holds ONE subscription,
  ``<topic prefix>.p.<id>``, for all of them. ``send()`` to a channel of
  this same ``_LoopLayer`` puts the message in its buffer directly;
  ``send()`` to another one is a sift request to ``<topic prefix>.p.<id>``,
  answered ``ok`` or ``full`` by the owner after it checked the channel's
  capacity, so ``ChannelFull`` is exact across processes. A buffer hands
  each message to exactly one ``receive()`` (several receivers of one
  channel included).
- **Groups**: a topic per group, ``<topic prefix>.g.<group>``. Membership
  is held by the process that owns the channel: ``group_add(g, ch)`` for a
  channel of this ``_LoopLayer`` records ``ch`` (with its join time, for
  ``group_expiry``) and subscribes, once per group and process, to the
  group's topic; for a channel of another process it asks the owner (a
  request on ``<topic prefix>.p.<id>``), which does the same and answers
  once its subscription is in place. ``group_send`` is ONE confirmed publish
  on the group topic, whatever the group's size; every process with members
  gets one copy and puts it in each member's buffer (a full buffer drops it,
  as channels_redis's group_send does). When a process's last member of a
  group leaves (discard or expiry), it unsubscribes from the group topic.
- **Normal channels** (no ``!``: worker channels) are shared by every
  process: the topic ``<topic prefix>.n.<channel>`` with an explicit-ack
  queue group (protocol.md §6.2) per channel. A process joins the group the
  first time it receives from the channel; before its first send to it in
  a session it DECLAREs the group's work queue (so the broker keeps
  messages in the group's backlog even while nobody receives, and a
  sender that never receives takes none). Each member takes at most one
  message at a time; a message that no local ``receive()`` takes within
  ``hold`` seconds is NACKed back to the broker, which offers it to
  another member; ``receive()`` confirms its ack before returning the
  message and skips a message whose ack fails (it was redelivered
  elsewhere), so each message is received once. A ``receive()`` cancelled
  during its ack keeps the acknowledged message (``_Taken``) for the next
  ``receive()`` here, or sends it to the channel again after ``hold``
  seconds or at close.
- **Encoding**: the message dict as msgpack (Debian's python3-msgpack, as
  channels_redis), the channel name and expiry time in sift headers.
- **Expiry**: every message carries its expiry time (``exp`` header, Unix
  seconds = send time + ``expiry``); an expired message is dropped where it
  is found (buffer, arrival, receive). Group memberships older than
  ``group_expiry`` seconds are dropped when the group is next used.
- ``flush()`` clears this process's channels and groups and tells every
  other process of the same prefix to do the same (a publish on
  ``<topic prefix>.ctl``; asynchronous for them).

Limits: a normal channel's bound is the broker's ``max_queued`` of its queue
group, set to ``capacity`` (messages waiting, not counting the one each
receiving process holds); beyond it the broker answers QUEUE_FULL, raised as
``ChannelFull`` (the message is dead-lettered to ``$sift.deadletter.<topic>``).
The broker keeps that bound from the first process for its life: a process
with another capacity for the channel gets InvalidRequest saying so. A
normal channel keeps one sender's order except for a message a process held
past ``hold`` or a cancelled ``receive()`` took: those come back later.
A process that
dies loses the messages in its buffers, and its memberships (as a Redis
layer's keys expire). Remote ``group_add`` to a process that does not answer
within ``send_timeout`` is logged and ignored; ``send`` to such a channel is
dropped (the owner is gone). Remote ``flush`` is asynchronous and does not
purge a normal channel's backlog in the broker. ``receive()`` of a
process-specific channel made by another connection raises RuntimeError.
"""

import asyncio
import collections
import hashlib
import logging
import random
import re
import string
import time
import types
import uuid
from typing import Any, Deque, Dict, Optional, Tuple

import msgpack
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer

from . import _args
from .aio import AsyncClient, AsyncSubscription
from .errors import (InvalidRequest, QueueFull, SiftError, Timeout,
                     UnknownDelivery)
from .message import Message
from .options import AckOptions

log = logging.getLogger("sift.channels")

__all__ = ["SiftChannelLayer"]

_PREFIX_RE = re.compile(r"^[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*$")


def _token(name: str) -> str:
    """A channel or group name as one topic token: names are
    [A-Za-z0-9-_.!], and a dot would split the token, so dots become '~'."""
    return name.replace(".", "~")


def _owner(channel: str) -> Optional[str]:
    """The client prefix of a process-specific channel
    (``<prefix>.<id>!<rand>`` -> ``<id>``), None for a normal channel."""
    bang = channel.find("!")
    if bang < 0:
        return None
    return channel[:bang].rsplit(".", 1)[-1]


def _encode(message: Dict[str, Any]) -> bytes:
    return msgpack.packb(message, use_bin_type=True)


def _decode(data: bytes) -> Dict[str, Any]:
    # strict_map_key=False: a message whose dicts have int (or other
    # non-str) keys reads back as it was sent, as in channels'
    # InMemoryChannelLayer, instead of failing at the receiver.
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


class _Taken:
    """A normal-channel message whose ACK a cancelled receive() had sent:
    it goes back first in line at once, and the next receive() of the
    channel here returns it once ``ack`` succeeds, without acking again
    (channels_redis keeps such messages in a receive buffer the same way);
    if the ACK fails, the broker gave the message to another member."""

    __slots__ = ("msg", "ack")

    def __init__(self, msg: Message, ack: "asyncio.Task") -> None:
        self.msg = msg
        self.ack = ack


class _Buffer:
    """A FIFO handing each item to exactly one getter, in arrival order.
    Items are (expires_at, value); expired ones are skipped."""

    def __init__(self) -> None:
        self.items: Deque[Tuple[float, Any]] = collections.deque()
        self.waiters: Deque[asyncio.Future] = collections.deque()

    def purge(self, now: float) -> None:
        while self.items and self.items[0][0] < now:
            self.items.popleft()

    def put(self, expires_at: float, value: Any) -> None:
        self.items.append((expires_at, value))
        self._wake()

    def put_front(self, expires_at: float, value: Any) -> None:
        """As put(), but first in line (a message taken and given back)."""
        self.items.appendleft((expires_at, value))
        self._wake()

    def _wake(self) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def remove(self, value: Any) -> bool:
        for i, (_, v) in enumerate(self.items):
            if v is value:
                del self.items[i]
                return True
        return False

    async def get(self) -> Any:
        loop = asyncio.get_running_loop()
        while True:
            self.purge(time.time())
            if self.items:
                _, value = self.items.popleft()
                if self.items:
                    self._wake()
                return value
            fut = loop.create_future()
            self.waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake()  # pass the wake-up on
                else:
                    try:
                        self.waiters.remove(fut)
                    except ValueError:
                        pass
                raise

    def idle(self) -> bool:
        return not self.items and not self.waiters


class SiftChannelLayer(BaseChannelLayer):
    """The channel layer. CONFIG keys (all optional):

    endpoint: the broker, ``tcp://HOST:PORT`` (default tcp://127.0.0.1:7440).
    prefix: first tokens of every topic the layer uses (default ``asgi``);
      layers with different prefixes do not see each other.
    capacity: messages a channel holds before ``send`` raises ChannelFull
      (default 100). For a normal channel, every process must give the same
      (the broker keeps the first; another raises InvalidRequest).
    channel_capacity: ``{glob or compiled regex: capacity}``, first match
      wins (default none).
    expiry: seconds a message waits for a receiver before it is dropped
      (default 60).
    group_expiry: seconds a group membership lasts (default 86400).
    send_timeout: seconds to wait for the broker or another process
      (confirmed publishes, requests to owners, acks; default 5).
    connect_timeout: seconds to wait for the broker's WELCOME (default 5).
    hold: seconds a process keeps a normal-channel message no local
      receive() took before giving it back to the broker (default 0.2).
    """

    extensions = ["groups", "flush"]

    def __init__(self, endpoint: str = "tcp://127.0.0.1:7440",
                 prefix: str = "asgi", expiry: float = 60,
                 group_expiry: float = 86400, capacity: int = 100,
                 channel_capacity: Optional[dict] = None,
                 send_timeout: float = 5.0, connect_timeout: float = 5.0,
                 hold: float = 0.2, **kwargs: Any) -> None:
        super().__init__(expiry=expiry, capacity=capacity,
                         channel_capacity=channel_capacity, **kwargs)
        if not _PREFIX_RE.match(prefix):
            raise ValueError(f"prefix {prefix!r}: dot-separated tokens of "
                             "A-Z a-z 0-9 _ - expected")
        _args.seconds(expiry, "expiry")
        self.endpoint = endpoint
        self.prefix = prefix
        self.group_expiry = _args.seconds(group_expiry, "group_expiry")
        self.channel_capacity = self.compile_capacities(channel_capacity or {})
        # Every blocking call has a timeout: None, negative or NaN are
        # refused here, not at the first send.
        self.send_timeout = _args.timeout(send_timeout, "send_timeout")
        self.connect_timeout = _args.timeout(connect_timeout,
                                             "connect_timeout")
        self.hold = _args.seconds(hold, "hold")
        self._layers: Dict[asyncio.AbstractEventLoop, "_LoopLayer"] = {}

    # ---- per-loop state ----

    async def _layer(self) -> "_LoopLayer":
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = _LoopLayer(self, loop)
            self._layers[loop] = layer
            self._wrap_close(loop)
        await layer.connect()
        return layer

    def _wrap_close(self, loop: asyncio.AbstractEventLoop) -> None:
        """Closes this loop's connection when the loop closes (asgiref's
        async_to_sync makes short-lived loops)."""
        original = loop.close
        layers = self._layers

        def close(self_loop, *args, **kwargs):
            layer = layers.pop(self_loop, None)
            if layer is not None and not self_loop.is_running():
                try:
                    self_loop.run_until_complete(layer.close())
                except Exception:  # noqa: BLE001  (closing anyway)
                    log.debug("closing the layer's client failed",
                              exc_info=True)
            self_loop.close = original
            return original(*args, **kwargs)

        loop.close = types.MethodType(close, loop)

    # ---- the channel layer API ----

    async def new_channel(self, prefix: str = "specific") -> str:
        """A new process-specific channel name, ``<prefix>.<id>!<random>``
        (a ``channel_capacity`` pattern for it: ``"<prefix>.*"``). It
        belongs to this event loop's connection: receivable on this loop
        only, gone when the loop closes. In sync code each
        ``async_to_sync(...)`` call runs a new loop, so make and use a
        channel within one call (channels_redis's names belong to the layer
        object instead)."""
        layer = await self._layer()
        suffix = "".join(random.choices(string.ascii_letters + string.digits,
                                        k=12))
        return f"{prefix}.{layer.id}!{suffix}"

    async def send(self, channel: str, message: dict) -> None:
        """Sends ``message`` to ``channel``. Raises ChannelFull when the
        channel (process-specific) holds ``capacity`` messages."""
        assert isinstance(message, dict), "message is not a dict"
        assert self.valid_channel_name(channel), "Channel name not valid"
        assert "__asgi_channel__" not in message
        layer = await self._layer()
        await layer.send(channel, _encode(message), time.time() + self.expiry)

    async def receive(self, channel: str) -> dict:
        """Waits for the next message of ``channel`` and returns it. Each
        message goes to one receive(), even with several waiting."""
        assert self.valid_channel_name(channel), "Channel name not valid"
        layer = await self._layer()
        return await layer.receive(channel)

    async def group_add(self, group: str, channel: str) -> None:
        assert self.valid_group_name(group), "Group name not valid"
        assert self.valid_channel_name(channel), "Channel name not valid"
        layer = await self._layer()
        await layer.group_op("group_add", group, channel)

    async def group_discard(self, group: str, channel: str) -> None:
        assert self.valid_group_name(group), "Group name not valid"
        assert self.valid_channel_name(channel), "Channel name not valid"
        layer = await self._layer()
        await layer.group_op("group_discard", group, channel)

    async def group_send(self, group: str, message: dict) -> None:
        """Sends ``message`` to every channel of ``group``, in every
        process: one publish on the group's topic. Full channels miss it."""
        assert isinstance(message, dict), "message is not a dict"
        assert self.valid_group_name(group), "Group name not valid"
        layer = await self._layer()
        await layer.client.publish_confirmed(
            layer.group_topic(group), _encode(message),
            headers={"exp": repr(time.time() + self.expiry), "grp": group},
            timeout=self.send_timeout)

    async def flush(self) -> None:
        """Drops every channel and group of this prefix: this loop's at
        once, other processes' when they get the broadcast."""
        layer = await self._layer()
        await layer.client.publish_confirmed(
            f"{self.prefix}.ctl", b"", headers={"op": "flush",
                                                "from": layer.id},
            timeout=self.send_timeout)
        await layer.flush_local()

    async def close(self) -> None:
        """Closes this event loop's connection (the others close with
        their loops)."""
        loop = asyncio.get_running_loop()
        layer = self._layers.pop(loop, None)
        if layer is not None:
            await layer.close()


class _LoopLayer:
    """The layer's state and sift connection for one event loop."""

    def __init__(self, parent: SiftChannelLayer,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.parent = parent
        self.loop = loop
        self.id = uuid.uuid4().hex
        self.client: Optional[AsyncClient] = None
        self._connect_lock = asyncio.Lock()
        self._sub_lock = asyncio.Lock()
        self.buffers: Dict[str, _Buffer] = {}
        # group -> {channel: joined at (Unix s)}; channels of this layer
        # and normal channels added here.
        self.groups: Dict[str, Dict[str, float]] = {}
        self.group_subs: Dict[str, AsyncSubscription] = {}
        self.normal_subs: Dict[str, AsyncSubscription] = {}
        self.normal_pending: Dict[str, _Buffer] = {}
        # normal channel -> the client_id of the session that DECLAREd its
        # work queue (a broker restart forgets declarations).
        self.normal_declared: Dict[str, str] = {}
        # normal channel -> the task subscribing this process to it.
        self.normal_joining: Dict[str, "asyncio.Task"] = {}
        self._subs = []
        self._closed = False
        self._next_sweep = 0.0

    # ---- topics ----

    def group_topic(self, group: str) -> str:
        return f"{self.parent.prefix}.g.{_token(group)}"

    def owner_topic(self, owner: str) -> str:
        return f"{self.parent.prefix}.p.{owner}"

    def normal_topic(self, channel: str) -> str:
        return f"{self.parent.prefix}.n.{_token(channel)}"

    def normal_group(self, channel: str) -> str:
        digest = hashlib.sha1(
            f"{self.parent.prefix}\0{channel}".encode()).hexdigest()
        return f"ch-{digest}"

    # ---- connection ----

    async def connect(self) -> None:
        if self.client is not None:
            return
        async with self._connect_lock:
            if self.client is not None:
                return
            if self._closed:
                raise SiftError("the channel layer is closed on this loop")
            client = await AsyncClient.connect(
                self.parent.endpoint, name=f"channels-{self.id[:8]}",
                connect_timeout=self.parent.connect_timeout)
            try:
                self._subs.append(await client.subscribe(
                    self.owner_topic(self.id), callback=self._on_owner,
                    timeout=self.parent.send_timeout))
                self._subs.append(await client.subscribe(
                    f"{self.parent.prefix}.ctl", callback=self._on_ctl,
                    timeout=self.parent.send_timeout))
            except BaseException:
                await client.close()
                raise
            self.client = client

    async def close(self) -> None:
        if self.client is not None and not self._closed:
            # Messages acknowledged for cancelled receive()s go back to
            # their channels for other processes.
            for channel, buf in list(self.normal_pending.items()):
                for _, item in list(buf.items):
                    if isinstance(item, _Taken) and buf.remove(item):
                        await self._resend_now(channel, item)
        self._closed = True
        client, self.client = self.client, None
        if client is not None:
            await client.close()

    # ---- process-specific channels ----

    def _put_local(self, channel: str, data: bytes, expires_at: float,
                   raise_full: bool) -> bool:
        """Puts a message in a channel of this layer; False (or
        ChannelFull) if the channel is full."""
        now = time.time()
        if now >= self._next_sweep:
            self._sweep(now)
        if expires_at < now:
            return True  # expired on the way: dropped
        buf = self.buffers.setdefault(channel, _Buffer())
        buf.purge(now)
        if len(buf.items) >= self.parent.get_capacity(channel):
            if raise_full:
                raise ChannelFull(channel)
            return False
        buf.put(expires_at, data)
        return True

    def _sweep(self, now: float) -> None:
        """Drops expired messages of every channel, and channels left with
        neither messages nor receivers (a closed consumer's channel that
        group messages still reached): O(channels), at most every
        min(expiry, 10) seconds."""
        self._next_sweep = now + min(float(self.parent.expiry), 10.0)
        for channel, buf in list(self.buffers.items()):
            buf.purge(now)
            if buf.idle():
                del self.buffers[channel]

    async def send(self, channel: str, data: bytes,
                   expires_at: float) -> None:
        owner = _owner(channel)
        if owner is None:
            await self._send_normal(channel, data, expires_at)
        elif owner == self.id:
            self._put_local(channel, data, expires_at, raise_full=True)
        else:
            try:
                reply = await self.client.request(
                    self.owner_topic(owner), data,
                    headers={"op": "send", "ch": channel,
                             "exp": repr(expires_at)},
                    timeout=self.parent.send_timeout)
            except Timeout:
                # Not raised (the owner may be gone for good), but not
                # necessarily lost: with the broker unreachable, the request
                # stays queued in the client and goes out after the
                # reconnect.
                log.info("send to %s: no answer from its process within "
                         "%s s (the process gone, or the broker unreachable: "
                         "then it may still arrive after the reconnect)",
                         channel, self.parent.send_timeout)
                return
            if reply.payload == b"full":
                raise ChannelFull(channel)

    async def _on_owner(self, msg: Message) -> None:
        """Requests to this layer: a send to one of its channels, or a
        group change for one of them."""
        op = (msg.header("op") or b"").decode()
        channel = (msg.header("ch") or b"").decode()
        try:
            if op == "send":
                expires_at = float(msg.header("exp") or 0)
                ok = self._put_local(channel, msg.payload, expires_at,
                                     raise_full=False)
                answer = b"ok" if ok else b"full"
            elif op in ("group_add", "group_discard"):
                group = (msg.header("grp") or b"").decode()
                await self._group_local(op, group, channel)
                answer = b"ok"
            else:
                answer = b"unknown op"
        except Exception as exc:  # noqa: BLE001  (answered, and logged)
            log.warning("channel layer request %s failed: %r", op, exc)
            answer = b"error"
        if msg.reply_to:
            await msg.respond(answer)

    async def receive(self, channel: str) -> dict:
        owner = _owner(channel)
        if owner is None:
            return await self._receive_normal(channel)
        if owner != self.id:
            raise RuntimeError(
                f"receive({channel!r}): the channel belongs to another "
                "process or event loop (new_channel() names are receivable "
                "where they were made)")
        buf = self.buffers.setdefault(channel, _Buffer())
        try:
            data = await buf.get()
        finally:
            if buf.idle() and self.buffers.get(channel) is buf:
                del self.buffers[channel]
        return _decode(data)

    # ---- groups ----

    async def group_op(self, op: str, group: str, channel: str) -> None:
        owner = _owner(channel)
        if owner is None or owner == self.id:
            await self._group_local(op, group, channel)
            return
        try:
            reply = await self.client.request(
                self.owner_topic(owner), b"",
                headers={"op": op, "ch": channel, "grp": group},
                timeout=self.parent.send_timeout)
        except Timeout:
            log.warning("%s(%s, %s): no answer from the channel's process "
                        "within %s s: ignored", op, group, channel,
                        self.parent.send_timeout)
            return
        if reply.payload != b"ok":
            raise SiftError(f"{op}({group!r}, {channel!r}): the channel's "
                            f"process answered {reply.payload!r}")

    async def _group_local(self, op: str, group: str, channel: str) -> None:
        async with self._sub_lock:
            if op == "group_add":
                self.groups.setdefault(group, {})[channel] = time.time()
                if group not in self.group_subs:
                    self.group_subs[group] = await self.client.subscribe(
                        self.group_topic(group), callback=self._on_group,
                        timeout=self.parent.send_timeout)
            else:
                members = self.groups.get(group)
                if members is not None:
                    members.pop(channel, None)
                await self._drop_group_if_empty(group)

    def _expire_members(self, group: str) -> Dict[str, float]:
        members = self.groups.get(group, {})
        oldest = time.time() - self.parent.group_expiry
        for channel, joined in list(members.items()):
            if joined < oldest:
                del members[channel]
        return members

    async def _drop_group_if_empty(self, group: str) -> None:
        """REQUIRES: self._sub_lock held."""
        if self._expire_members(group):
            return
        self.groups.pop(group, None)
        sub = self.group_subs.pop(group, None)
        if sub is not None:
            await sub.unsubscribe(self.parent.send_timeout)

    async def _on_group(self, msg: Message) -> None:
        """A group_send: one copy per member channel of this process."""
        group = (msg.header("grp") or b"").decode()
        expires_at = float(msg.header("exp") or 0)
        if expires_at < time.time():
            return
        members = self._expire_members(group)
        for channel in list(members):
            if _owner(channel) is None:
                try:
                    await self._send_normal(channel, msg.payload, expires_at)
                except Exception as exc:  # noqa: BLE001
                    log.warning("group %s to %s: %r", group, channel, exc)
            else:
                self._put_local(channel, msg.payload, expires_at,
                                raise_full=False)
        if not members and group in self.group_subs:
            async with self._sub_lock:
                await self._drop_group_if_empty(group)

    # ---- normal channels ----

    def _normal_ack(self, channel: str) -> AckOptions:
        """The work-queue policy of a normal channel's group, the same in
        every process of this configuration (the broker refuses a member
        whose max_deliver, max_queued or backoff differ)."""
        return AckOptions(ack_wait=max(30.0, self.parent.hold * 10),
                          max_deliver=0, max_in_flight=1,
                          max_queued=self.parent.get_capacity(channel),
                          backoff_initial=0.01, backoff_max=0.5,
                          backoff_jitter=0.0)

    async def _join_normal(self, channel: str) -> None:
        """Makes this process a receiving member of the channel's group.
        The subscribe runs in a task of its own that a cancelled receive()
        does not cancel: cancelled half way, the broker would have a member
        here that this layer does not know, holding a message no receive()
        gets until its ack wait runs out (then out of order)."""
        if channel in self.normal_subs:
            return
        joining = self.normal_joining.get(channel)
        if joining is None:
            joining = self.loop.create_task(self._subscribe_normal(channel))
            self.normal_joining[channel] = joining
            joining.add_done_callback(
                lambda _: self.normal_joining.pop(channel, None))
        await asyncio.shield(joining)

    async def _subscribe_normal(self, channel: str) -> None:
        async with self._sub_lock:
            if channel in self.normal_subs:
                return
            self.normal_pending.setdefault(channel, _Buffer())
            try:
                self.normal_subs[channel] = await self.client.subscribe(
                    self.normal_topic(channel),
                    queue_group=self.normal_group(channel),
                    ack=self._normal_ack(channel), callback=self._on_normal,
                    timeout=self.parent.send_timeout)
            except InvalidRequest as exc:
                raise self._capacity_mismatch(channel, exc) from None

    async def _declare_normal(self, channel: str) -> None:
        """Makes the broker keep the channel's work queue (DECLARE,
        protocol.md §6.2) before this process's first send to it in this
        session, so that what is sent waits there while no process
        receives. A sender does not join the group: a member takes a
        message, and one that never receives would only hold it for
        ``hold`` seconds and count against ``capacity``."""
        session = self.client.client_id
        if self.normal_declared.get(channel) == session:
            return
        try:
            await self.client.declare(self.normal_topic(channel),
                                      self.normal_group(channel),
                                      self._normal_ack(channel),
                                      timeout=self.parent.send_timeout)
        except InvalidRequest as exc:
            raise self._capacity_mismatch(channel, exc) from None
        self.normal_declared[channel] = session

    def _capacity_mismatch(self, channel: str,
                           exc: InvalidRequest) -> InvalidRequest:
        """The broker refused this process's work-queue policy for the
        channel: in practice, another capacity than the first process's
        (the broker keeps the first for its life)."""
        return InvalidRequest(
            f"normal channel {channel!r}: the broker's work queue for it "
            "was made by a process with another capacity than this one's "
            f"({self.parent.get_capacity(channel)}); every process must give "
            "a normal channel the same capacity (or restart siftd, or use "
            f"another prefix): {exc}")

    async def _send_normal(self, channel: str, data: bytes,
                           expires_at: float) -> None:
        await self._declare_normal(channel)
        try:
            await self.client.publish_confirmed(
                self.normal_topic(channel), data,
                headers={"exp": repr(expires_at)},
                timeout=self.parent.send_timeout)
        except QueueFull:
            # The broker's work queue for the channel holds `capacity`
            # messages waiting (max_queued): this one was dead-lettered.
            raise ChannelFull(channel) from None

    def _normal_channel_of(self, msg: Message) -> Optional[str]:
        for channel, sub in self.normal_subs.items():
            if sub.sid == msg.sid:
                return channel
        return None

    async def _on_normal(self, msg: Message) -> None:
        channel = self._normal_channel_of(msg)
        buf = self.normal_pending.get(channel) if channel else None
        if buf is None:
            await self._ack_quietly(msg)  # flushed meanwhile
            return
        buf.put(float("inf"), msg)
        self.loop.call_later(self.parent.hold, self._hand_back, buf, msg)

    def _hand_back(self, buf: _Buffer, msg: Message) -> None:
        """Nobody here took it in time: give it back to the broker, which
        offers it to another member (or to us again, shortly)."""
        if buf.remove(msg) and self.client is not None:
            self.loop.create_task(self._nack_quietly(msg))

    async def _nack_quietly(self, msg: Message) -> None:
        try:
            await self.client.nack(msg, delay=0.02)
        except Exception:  # noqa: BLE001  (redelivered after ack_wait)
            log.debug("nack failed", exc_info=True)

    async def _ack_quietly(self, msg: Message) -> None:
        try:
            await self.client.ack(msg)
        except Exception:  # noqa: BLE001
            log.debug("ack failed", exc_info=True)

    async def _receive_normal(self, channel: str) -> dict:
        await self._join_normal(channel)
        buf = self.normal_pending[channel]
        while True:
            item = await buf.get()
            if isinstance(item, _Taken):
                msg, ack = item.msg, item.ack  # a cancelled receive()'s
            else:
                msg = item
                ack = self.loop.create_task(
                    self.client.ack(msg, timeout=self.parent.send_timeout))
            # Shielded: a cancelled receive() cannot take back an ACK
            # already sent, so the message goes back first in line
            # (_keep_taken) instead of being lost.
            try:
                await asyncio.shield(ack)
            except asyncio.CancelledError:
                if not ack.cancelled():  # else: the layer is closing
                    self._keep_taken(channel, buf, _Taken(msg, ack))
                raise
            except (UnknownDelivery, Timeout, SiftError):
                continue  # redelivered elsewhere: not ours any more
            expires_at = float(msg.header("exp") or 0)
            if expires_at < time.time():
                continue
            return _decode(msg.payload)

    def _keep_taken(self, channel: str, buf: _Buffer,
                    taken: _Taken) -> None:
        """After a receive() was cancelled during its ACK: the message goes
        back first in line (it came before what waits); if no receive()
        takes it within ``hold`` seconds and its ACK succeeded, it is sent
        to the channel again (a new message, for any process)."""
        buf.put_front(float("inf"), taken)
        self.loop.call_later(self.parent.hold, self._resend_taken, channel,
                             buf, taken)

    def _resend_taken(self, channel: str, buf: _Buffer,
                      taken: _Taken) -> None:
        if taken not in (v for _, v in buf.items):
            return  # a receive() took it
        if not taken.ack.done():
            self.loop.call_later(self.parent.hold, self._resend_taken,
                                 channel, buf, taken)
            return
        if buf.remove(taken) and self.client is not None and \
                not self._closed:
            self.loop.create_task(self._resend_now(channel, taken))

    async def _resend_now(self, channel: str, taken: _Taken) -> None:
        """Sends a kept message to its channel again, if its ACK made it
        this process's (else the broker redelivers it)."""
        if taken.ack.cancelled():
            return
        try:
            await asyncio.shield(taken.ack)
        except Exception:  # noqa: BLE001  (not ours: redelivered)
            return
        expires_at = float(taken.msg.header("exp") or 0)
        if expires_at < time.time():
            return
        try:
            await self._send_normal(channel, taken.msg.payload, expires_at)
        except Exception as exc:  # noqa: BLE001  (logged: it is lost)
            log.warning("channel %s: a message kept after a cancelled "
                        "receive() could not be sent again: %r", channel, exc)

    # ---- flush ----

    async def _on_ctl(self, msg: Message) -> None:
        if msg.header("op") == b"flush" and \
                (msg.header("from") or b"").decode() != self.id:
            await self.flush_local()

    async def flush_local(self) -> None:
        """Empties this layer's channels and groups. Buffers with waiting
        receivers stay (emptied), so those receivers get later messages;
        normal-channel memberships stay, their held messages are acked
        (dropped)."""
        async with self._sub_lock:
            for channel, buf in list(self.buffers.items()):
                buf.items.clear()
                if buf.idle():
                    del self.buffers[channel]
            self.groups.clear()
            group_subs, self.group_subs = self.group_subs, {}
            for buf in self.normal_pending.values():
                held = [msg for _, msg in buf.items
                        if not isinstance(msg, _Taken)]
                buf.items.clear()
                for msg in held:
                    await self._ack_quietly(msg)
            for sub in group_subs.values():
                try:
                    await sub.unsubscribe(self.parent.send_timeout)
                except SiftError:
                    log.debug("unsubscribe failed", exc_info=True)
