"""Tests of sift.channels.SiftChannelLayer (the Django Channels layer)
against a real siftd: every behaviour of the channel layer specification
(send/receive, new_channel, capacity, expiry, groups, group expiry, flush,
exactly-once receive) within one process, across layers (connections) in
one process, and across two OS processes.

Run by run_channels.py (Bazel: //clients/python:python_channels_test).
Named *_tests.py, not *_test.py, so the client's own run.py (which needs no
Django) does not pick it up.
"""

import asyncio
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import unittest

from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull

import sift
from sift.channels import SiftChannelLayer
from siftd import Siftd

_HERE = os.path.dirname(os.path.abspath(__file__))
_counter = itertools.count(1)

SHORT = 0.5  # seconds: "nothing arrives" waits


class LayerTestCase(unittest.IsolatedAsyncioTestCase):
    @classmethod
    def setUpClass(cls):
        cls.siftd = Siftd("--log_level=warn").start()

    @classmethod
    def tearDownClass(cls):
        cls.siftd.stop()

    def setUp(self):
        self.prefix = f"t{os.getpid()}x{next(_counter)}"

    def layer(self, **config):
        config.setdefault("endpoint", self.siftd.endpoint)
        config.setdefault("prefix", self.prefix)
        config.setdefault("send_timeout", 2.0)
        layer = SiftChannelLayer(**config)
        self.addAsyncCleanup(layer.close)
        return layer

    async def assertNothing(self, layer, channel, timeout=SHORT):
        with self.assertRaises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channel), timeout)

    async def recv(self, layer, channel, timeout=5.0):
        return await asyncio.wait_for(layer.receive(channel), timeout)


class SendReceiveTest(LayerTestCase):
    async def test_send_receive_normal_channel(self):
        layer = self.layer()
        await layer.send("test-channel-1", {"type": "test.message",
                                            "text": "Ahoy-hoy!"})
        msg = await self.recv(layer, "test-channel-1")
        self.assertEqual(msg, {"type": "test.message", "text": "Ahoy-hoy!"})

    async def test_send_receive_specific_channel(self):
        layer = self.layer()
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "test.message", "n": 1})
        self.assertEqual(await self.recv(layer, channel),
                         {"type": "test.message", "n": 1})

    async def test_messages_in_order(self):
        layer = self.layer()
        channel = await layer.new_channel()
        for i in range(20):
            await layer.send(channel, {"type": "m", "i": i})
        got = [(await self.recv(layer, channel))["i"] for _ in range(20)]
        self.assertEqual(got, list(range(20)))

    async def test_receive_blocks_until_a_message(self):
        layer = self.layer()
        channel = await layer.new_channel()
        task = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.3)
        self.assertFalse(task.done())
        await layer.send(channel, {"type": "late"})
        self.assertEqual((await asyncio.wait_for(task, 5))["type"], "late")

    async def test_receive_cancelled_loses_nothing(self):
        layer = self.layer()
        channel = await layer.new_channel()
        with self.assertRaises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 0.1)
        await layer.send(channel, {"type": "after"})
        self.assertEqual((await self.recv(layer, channel))["type"], "after")

    async def test_cancelled_receives_of_a_normal_channel_lose_nothing(self):
        # A receive() cancelled while its ACK is on the way (wait_for
        # running out, a consumer stopping) must not lose the message it
        # confirmed. Cancels after 0-4 ms, as a trial did (it lost 5 of 30
        # before the fix); whether one lands during an ACK depends on
        # timing, and the next test makes sure one does.
        receiver, sender = self.layer(), self.layer()
        channel = "cancelled-%d" % id(self)
        got = []
        for i in range(30):
            task = asyncio.ensure_future(receiver.receive(channel))
            await asyncio.sleep(0.02)
            await sender.send(channel, {"type": "m", "i": i})
            await asyncio.sleep((i % 5) / 1000)
            task.cancel()
            try:
                got.append((await task)["i"])
            except asyncio.CancelledError:
                pass
        while len(got) < 30:
            got.append((await self.recv(receiver, channel, timeout=10))["i"])
        self.assertEqual(sorted(got), list(range(30)))
        await self.assertNothing(receiver, channel)

    async def test_a_receive_cancelled_while_joining_loses_no_order(self):
        # The first receive() of a normal channel subscribes this process
        # to it; cancelled during that (a trial: wait_for(receive(), 0.5 ms))
        # the broker had a member here the layer did not know, which took
        # the next message and held it for its 30 s ack wait.
        layer = self.layer()
        channel = "joining-%d" % id(self)
        for i in range(5):
            await layer.send(channel, {"type": "m", "i": i})
        with self.assertRaises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(channel), 0.0005)
        got = [(await self.recv(layer, channel, timeout=3))["i"]
               for _ in range(5)]
        self.assertEqual(got, [0, 1, 2, 3, 4])

    async def test_a_message_acked_for_a_cancelled_receive_stays_first(self):
        # Its ACK freed the process's slot, so the broker sent the next
        # message while the ACK's answer was on its way: that one must not
        # overtake it (a trial got [1, 0, 2, 3, 4]). `hold` is longer than
        # the late answer, so that nothing is handed back meanwhile.
        layer = self.layer(hold=2.0)
        channel = "first-%d" % id(self)
        for i in range(3):
            await layer.send(channel, {"type": "m", "i": i})
        await self.assertNothing(layer, "warm-%d" % id(self), timeout=0.05)
        loop_layer = layer._layers[asyncio.get_running_loop()]
        real_ack = loop_layer.client.ack

        async def slow_ack(msg, **kwargs):
            result = await real_ack(msg, **kwargs)
            await asyncio.sleep(0.2)  # the answer is late
            return result

        loop_layer.client.ack = slow_ack
        task = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.1)  # message 0 taken, its ACK sent
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        loop_layer.client.ack = real_ack
        got = [(await self.recv(layer, channel))["i"] for _ in range(3)]
        self.assertEqual(got, [0, 1, 2])

    async def test_a_kept_message_goes_back_when_no_receive_comes(self):
        # The message a cancelled receive() confirmed is sent to the
        # channel again after `hold` when this process receives no more.
        # The ACK is made slow here so that the cancel lands during it.
        first = self.layer(hold=0.1)
        channel = "kept-%d" % id(self)
        await first.send(channel, {"type": "m", "n": 1})
        loop_layer = first._layers[asyncio.get_running_loop()]
        real_ack = loop_layer.client.ack

        async def slow_ack(msg, **kwargs):
            await asyncio.sleep(0.2)
            return await real_ack(msg, **kwargs)

        loop_layer.client.ack = slow_ack
        task = asyncio.ensure_future(first.receive(channel))
        deadline = time.monotonic() + 5
        while not loop_layer.normal_subs and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # delivered, its ACK on the way
        task.cancel()
        with self.assertRaises(asyncio.CancelledError):
            await task
        loop_layer.client.ack = real_ack
        other = self.layer()
        self.assertEqual(await self.recv(other, channel),
                         {"type": "m", "n": 1})
        await self.assertNothing(first, channel)

    async def test_message_values_round_trip(self):
        layer = self.layer()
        channel = await layer.new_channel()
        message = {"type": "x", "bytes": b"\x00\xff", "int": -7,
                   "big": 2 ** 40, "float": 1.5, "none": None,
                   "list": [1, "two", [3]], "nested": {"a": {"b": True}},
                   "text": "h\u00e9llo", "int_keys": {1: "a", 2: [3]}}
        await layer.send(channel, message)
        self.assertEqual(await self.recv(layer, channel), message)

    async def test_each_receiver_gets_its_own_copy_of_a_group_message(self):
        layer = self.layer()
        a, b = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("g", a)
        await layer.group_add("g", b)
        await layer.group_send("g", {"type": "m", "list": [1]})
        ma, mb = await self.recv(layer, a), await self.recv(layer, b)
        ma["list"].append(2)
        self.assertEqual(mb["list"], [1])

    async def test_invalid_names_and_messages(self):
        layer = self.layer()
        with self.assertRaises(TypeError):
            await layer.send("bad name", {"type": "x"})
        with self.assertRaises(TypeError):
            await layer.send("a" * 120, {"type": "x"})
        with self.assertRaises(TypeError):
            await layer.group_add("bad group!", "chan")
        with self.assertRaises(TypeError):
            await layer.group_send("", {"type": "x"})
        with self.assertRaises(AssertionError):
            await layer.send("chan", "not a dict")
        with self.assertRaises(AssertionError):
            await layer.send("chan", {"__asgi_channel__": "x"})

    async def test_receive_of_another_layers_channel_is_refused(self):
        a, b = self.layer(), self.layer()
        channel = await a.new_channel()
        with self.assertRaises(RuntimeError):
            await b.receive(channel)

    async def test_send_to_a_vanished_process_is_dropped_quietly(self):
        layer = self.layer(send_timeout=0.3)
        start = time.monotonic()
        await layer.send("specific.0123456789abcdef!xyz", {"type": "x"})
        self.assertLess(time.monotonic() - start, 2.0)


class NewChannelTest(LayerTestCase):
    async def test_names_are_process_specific_and_unique(self):
        layer = self.layer()
        a = await layer.new_channel()
        b = await layer.new_channel()
        c = await layer.new_channel(prefix="http.response")
        self.assertNotEqual(a, b)
        self.assertRegex(a, r"^specific\.[0-9a-f]{32}![A-Za-z0-9]{12}$")
        self.assertTrue(c.startswith("http.response."))
        # One process prefix (the non-local part) for all of this layer's
        # channels, as channels_redis.
        self.assertEqual(a.split("!")[0], b.split("!")[0])
        self.assertEqual(layer.non_local_name(a), a.split("!")[0] + "!")
        self.assertTrue(layer.valid_channel_name(a))
        other = await self.layer().new_channel()
        self.assertNotEqual(other.split("!")[0], a.split("!")[0])

    async def test_many_names_unique(self):
        layer = self.layer()
        names = {await layer.new_channel() for _ in range(500)}
        self.assertEqual(len(names), 500)


class CapacityTest(LayerTestCase):
    async def test_capacity_raises_channel_full(self):
        layer = self.layer(capacity=3)
        channel = await layer.new_channel()
        for i in range(3):
            await layer.send(channel, {"type": "m", "i": i})
        with self.assertRaises(ChannelFull):
            await layer.send(channel, {"type": "m", "i": 3})
        self.assertEqual((await self.recv(layer, channel))["i"], 0)
        await layer.send(channel, {"type": "m", "i": 4})  # room again
        got = [(await self.recv(layer, channel))["i"] for _ in range(3)]
        self.assertEqual(got, [1, 2, 4])

    async def test_capacity_across_connections(self):
        owner = self.layer(capacity=2)
        sender = self.layer(capacity=2)
        channel = await owner.new_channel()
        await sender.send(channel, {"type": "m", "i": 0})
        await sender.send(channel, {"type": "m", "i": 1})
        with self.assertRaises(ChannelFull):
            await sender.send(channel, {"type": "m", "i": 2})
        self.assertEqual((await self.recv(owner, channel))["i"], 0)

    async def test_channel_capacity_patterns(self):
        layer = self.layer(capacity=10, channel_capacity={
            "http.response!*": 2, re.compile(r"^websocket\.send!"): 4,
            "special*": 1})
        self.assertEqual(layer.get_capacity("http.response!abc"), 2)
        self.assertEqual(layer.get_capacity("websocket.send!x"), 4)
        self.assertEqual(layer.get_capacity("specialist"), 1)
        self.assertEqual(layer.get_capacity("other"), 10)
        small = await layer.new_channel(prefix="special")
        for i in range(1):
            await layer.send(small, {"type": "m"})
        with self.assertRaises(ChannelFull):
            await layer.send(small, {"type": "m"})
        big = await layer.new_channel(prefix="plain")
        for i in range(10):
            await layer.send(big, {"type": "m"})
        with self.assertRaises(ChannelFull):
            await layer.send(big, {"type": "m"})

    async def test_documented_channel_capacity_patterns(self):
        """The channel_capacity example of docs/python.md ("Django
        Channels") matches the names new_channel(prefix) makes:
        <prefix>.<id>!<12 random characters>."""
        documented = {"http.response.*": 10,
                      re.compile(r"^websocket\.send\."): 20}
        layer = self.layer(capacity=100, channel_capacity=documented)
        response = await layer.new_channel("http.response")
        self.assertRegex(response,
                         r"^http\.response\.[0-9a-f]{32}![A-Za-z0-9]{12}$")
        websocket = await layer.new_channel("websocket.send")
        self.assertEqual(layer.get_capacity(response), 10)
        self.assertEqual(layer.get_capacity(websocket), 20)
        self.assertEqual(layer.get_capacity(await layer.new_channel()), 100)
        for _ in range(10):
            await layer.send(response, {"type": "m"})
        with self.assertRaises(ChannelFull):
            await layer.send(response, {"type": "m"})
        # What the docs showed before matched none of these names.
        old = self.layer(capacity=100, channel_capacity={
            "http.response!*": 10, re.compile(r"^websocket\.send!"): 20})
        self.assertEqual(old.get_capacity(response), 100)
        self.assertEqual(old.get_capacity(websocket), 100)

    async def test_timeouts_are_checked_up_front(self):
        # Every blocking call has a timeout: None, negative, NaN refused
        # when the layer is made, not at the first send.
        for key in ("send_timeout", "connect_timeout"):
            for bad in (None, -1, float("nan")):
                with self.subTest(key=key, value=bad):
                    with self.assertRaises(sift.InvalidRequest) as cm:
                        SiftChannelLayer(**{key: bad})
                    self.assertIn(key, str(cm.exception))
        with self.assertRaises(sift.InvalidRequest):
            SiftChannelLayer(hold=-1)

    async def test_normal_channel_full_raises_channel_full(self):
        # A normal channel's bound is its work queue's max_queued in the
        # broker (capacity), plus the one message each receiving process
        # holds; beyond, the broker answers QUEUE_FULL -> ChannelFull. A
        # process that has only sent holds none (it declares the queue,
        # it does not join it): the bound is exactly `capacity`.
        layer = self.layer(capacity=2)
        channel = "normal-full-%d" % id(self)
        for i in range(2):
            await layer.send(channel, {"type": "m", "i": i})
        with self.assertRaises(ChannelFull):
            await layer.send(channel, {"type": "m", "i": 2})
        got = [(await self.recv(layer, channel))["i"] for _ in range(2)]
        self.assertEqual(sorted(got), [0, 1])
        # Now a receiving member, this process holds one more.
        for i in range(3, 6):
            await layer.send(channel, {"type": "m", "i": i})
        with self.assertRaises(ChannelFull):
            await layer.send(channel, {"type": "m", "i": 6})
        got = [(await self.recv(layer, channel))["i"] for _ in range(3)]
        self.assertEqual(sorted(got), [3, 4, 5])

    async def test_another_capacity_for_a_normal_channel_says_so(self):
        # The broker keeps a normal channel's work-queue bound from the
        # first process for its life; a process with another capacity got
        # the broker's words about max_queued and a queue group (a trial).
        first, other = self.layer(capacity=2), self.layer(capacity=10)
        channel = "capacity-%d" % id(self)
        await first.send(channel, {"type": "m"})
        for call in (lambda: other.send(channel, {"type": "m"}),
                     lambda: other.receive(channel)):
            with self.assertRaises(sift.InvalidRequest) as cm:
                await asyncio.wait_for(call(), 5)
            self.assertIn(
                "another capacity than this one's (10); every process must "
                "give a normal channel the same capacity", str(cm.exception))
        self.assertEqual((await self.recv(first, channel))["type"], "m")

    async def test_a_process_that_only_sends_takes_no_message(self):
        # Before the fix, a sender joined the channel's group: it took
        # every other message and held it `hold` seconds before handing
        # it back, so a waiting receiver got it that late.
        sender, receiver = self.layer(hold=5.0), self.layer(hold=5.0)
        channel = "sender-only-%d" % id(self)
        self.assertEqual(
            (await asyncio.gather(
                receiver.receive(channel),
                sender.send(channel, {"type": "m", "i": -1})))[0]["i"], -1)
        for i in range(6):
            await sender.send(channel, {"type": "m", "i": i})
            # Well within `hold`: a sender holding it would make this wait
            # the 5 s.
            self.assertEqual(
                (await self.recv(receiver, channel, timeout=2.5))["i"], i)
        loop_layer = sender._layers[asyncio.get_running_loop()]
        self.assertEqual(loop_layer.normal_subs, {})

    async def test_group_send_to_a_full_channel_does_not_raise(self):
        layer = self.layer(capacity=1)
        full = await layer.new_channel()
        free = await layer.new_channel()
        await layer.group_add("g", full)
        await layer.group_add("g", free)
        await layer.send(full, {"type": "first"})
        await layer.group_send("g", {"type": "group"})
        self.assertEqual((await self.recv(layer, free))["type"], "group")
        self.assertEqual((await self.recv(layer, full))["type"], "first")
        await self.assertNothing(layer, full)


class ExpiryTest(LayerTestCase):
    async def test_expired_messages_are_dropped(self):
        layer = self.layer(expiry=0.3)
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "old"})
        await asyncio.sleep(0.6)
        await layer.send(channel, {"type": "new"})
        self.assertEqual((await self.recv(layer, channel))["type"], "new")
        await self.assertNothing(layer, channel)

    async def test_expired_messages_free_capacity(self):
        layer = self.layer(expiry=0.3, capacity=1)
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "old"})
        await asyncio.sleep(0.6)
        await layer.send(channel, {"type": "new"})  # no ChannelFull

    async def test_expired_messages_of_abandoned_channels_are_freed(self):
        layer = self.layer(expiry=0.3)
        abandoned = [await layer.new_channel() for _ in range(20)]
        for c in abandoned:
            await layer.send(c, {"type": "never.read"})
        (inner,) = layer._layers.values()
        self.assertEqual(len(inner.buffers), 20)
        await asyncio.sleep(0.6)
        live = await layer.new_channel()
        await layer.send(live, {"type": "x"})  # sweeps
        self.assertEqual(set(inner.buffers), {live})

    async def test_expiry_on_normal_channels(self):
        layer = self.layer(expiry=0.3, hold=0.1)
        await layer.send("expiring", {"type": "old"})
        await asyncio.sleep(0.6)
        await self.assertNothing(layer, "expiring")
        await layer.send("expiring", {"type": "new"})
        self.assertEqual((await self.recv(layer, "expiring"))["type"], "new")

    async def test_expiry_of_group_messages(self):
        layer = self.layer(expiry=0.3)
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        await layer.group_send("g", {"type": "old"})
        await asyncio.sleep(0.6)
        await self.assertNothing(layer, channel)


class GroupTest(LayerTestCase):
    async def test_group_send_reaches_members_only(self):
        layer = self.layer()
        a, b, c = [await layer.new_channel() for _ in range(3)]
        await layer.group_add("test-group", a)
        await layer.group_add("test-group", b)
        await layer.group_send("test-group", {"type": "message.1"})
        self.assertEqual((await self.recv(layer, a))["type"], "message.1")
        self.assertEqual((await self.recv(layer, b))["type"], "message.1")
        await self.assertNothing(layer, c)

    async def test_group_discard(self):
        layer = self.layer()
        a, b = await layer.new_channel(), await layer.new_channel()
        await layer.group_add("test-group", a)
        await layer.group_add("test-group", b)
        await layer.group_discard("test-group", b)
        await layer.group_send("test-group", {"type": "m"})
        self.assertEqual((await self.recv(layer, a))["type"], "m")
        await self.assertNothing(layer, b)
        await layer.group_discard("test-group", a)
        await layer.group_discard("test-group", a)  # idempotent
        await layer.group_discard("never-was", a)
        await layer.group_send("test-group", {"type": "m2"})
        await self.assertNothing(layer, a)

    async def test_group_add_twice_delivers_once(self):
        layer = self.layer()
        a = await layer.new_channel()
        await layer.group_add("g", a)
        await layer.group_add("g", a)
        await layer.group_send("g", {"type": "once"})
        await self.recv(layer, a)
        await self.assertNothing(layer, a)

    async def test_concurrent_group_adds_deliver_once(self):
        layer = self.layer()
        chans = [await layer.new_channel() for _ in range(10)]
        await asyncio.gather(*(layer.group_add("g", c) for c in chans))
        await layer.group_send("g", {"type": "once"})
        for c in chans:
            await self.recv(layer, c)
        for c in chans[:3]:
            await self.assertNothing(layer, c, 0.2)

    async def test_channel_in_several_groups(self):
        layer = self.layer()
        a = await layer.new_channel()
        await layer.group_add("g1", a)
        await layer.group_add("g2", a)
        await layer.group_send("g1", {"type": "one"})
        await layer.group_send("g2", {"type": "two"})
        got = {(await self.recv(layer, a))["type"] for _ in range(2)}
        self.assertEqual(got, {"one", "two"})

    async def test_group_send_to_an_empty_group(self):
        layer = self.layer()
        await layer.group_send("nobody", {"type": "m"})

    async def test_group_expiry(self):
        layer = self.layer(group_expiry=0.5)
        a = await layer.new_channel()
        await layer.group_add("g", a)
        await asyncio.sleep(0.8)
        await layer.group_send("g", {"type": "late"})
        await self.assertNothing(layer, a)
        await layer.group_add("g", a)  # joins again, fresh
        await layer.group_send("g", {"type": "again"})
        self.assertEqual((await self.recv(layer, a))["type"], "again")

    async def test_group_with_a_normal_channel(self):
        layer = self.layer()
        await layer.group_add("g", "worker-chan")
        await layer.group_send("g", {"type": "to.worker"})
        self.assertEqual((await self.recv(layer, "worker-chan"))["type"],
                         "to.worker")

    async def test_group_send_across_connections(self):
        a, b = self.layer(), self.layer()
        ca, cb = await a.new_channel(), await b.new_channel()
        await a.group_add("shared", ca)
        await b.group_add("shared", cb)
        await a.group_send("shared", {"type": "hello"})
        self.assertEqual((await self.recv(a, ca))["type"], "hello")
        self.assertEqual((await self.recv(b, cb))["type"], "hello")

    async def test_remote_group_add_and_discard(self):
        a, b = self.layer(), self.layer()
        cb = await b.new_channel()
        await a.group_add("g", cb)   # asks b's process
        await a.group_send("g", {"type": "via.a"})
        self.assertEqual((await self.recv(b, cb))["type"], "via.a")
        await a.group_discard("g", cb)
        await a.group_send("g", {"type": "after"})
        await self.assertNothing(b, cb)

    async def test_large_group(self):
        a, b = self.layer(), self.layer()
        chans = ([(a, await a.new_channel()) for _ in range(100)] +
                 [(b, await b.new_channel()) for _ in range(100)])
        for layer, c in chans:
            await layer.group_add("big", c)
        for i in range(5):
            await a.group_send("big", {"type": "m", "i": i})
        for layer, c in chans:
            got = [(await self.recv(layer, c))["i"] for _ in range(5)]
            self.assertEqual(got, list(range(5)))


class FlushTest(LayerTestCase):
    async def test_flush_empties_channels_and_groups(self):
        layer = self.layer()
        a = await layer.new_channel()
        await layer.send(a, {"type": "before"})
        await layer.group_add("g", a)
        await layer.flush()
        await self.assertNothing(layer, a)
        await layer.group_send("g", {"type": "after"})
        await self.assertNothing(layer, a)
        await layer.send(a, {"type": "works"})  # usable again
        self.assertEqual((await self.recv(layer, a))["type"], "works")

    async def test_flush_reaches_other_processes(self):
        a, b = self.layer(), self.layer()
        cb = await b.new_channel()
        await b.group_add("g", cb)
        await b.send(cb, {"type": "before"})
        await a.flush()
        await asyncio.sleep(0.3)
        await a.group_send("g", {"type": "after"})
        await self.assertNothing(b, cb)

    async def test_flush_keeps_waiting_receivers_working(self):
        layer = self.layer()
        a = await layer.new_channel()
        task = asyncio.ensure_future(layer.receive(a))
        await asyncio.sleep(0.1)
        await layer.flush()
        await layer.send(a, {"type": "x"})
        self.assertEqual((await asyncio.wait_for(task, 5))["type"], "x")


class ExactlyOnceTest(LayerTestCase):
    async def test_concurrent_receivers_of_one_specific_channel(self):
        layer = self.layer(capacity=1000)
        channel = await layer.new_channel()
        got = []

        async def receiver():
            while True:
                got.append((await layer.receive(channel))["i"])

        tasks = [asyncio.ensure_future(receiver()) for _ in range(10)]
        other = self.layer()
        for i in range(200):
            await (layer if i % 2 else other).send(channel,
                                                   {"type": "m", "i": i})
        deadline = time.monotonic() + 5
        while len(got) < 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.assertEqual(sorted(got), list(range(200)))

    async def test_concurrent_receivers_of_a_normal_channel(self):
        layers = [self.layer(hold=0.1) for _ in range(3)]
        got = []

        async def receiver(layer, who):
            while True:
                got.append(((await layer.receive("work"))["i"], who))

        tasks = [asyncio.ensure_future(receiver(l, n))
                 for n, l in enumerate(layers) for _ in range(3)]
        await asyncio.sleep(0.3)  # every layer has joined
        sender = self.layer()
        for i in range(60):
            await sender.send("work", {"type": "m", "i": i})
        deadline = time.monotonic() + 10
        while len(got) < 60 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.assertEqual(sorted(i for i, _ in got), list(range(60)))
        self.assertGreater(len({who for _, who in got}), 1)

    async def test_normal_channel_sent_before_any_receiver_elsewhere(self):
        sender, receiver = self.layer(hold=0.1), self.layer(hold=0.1)
        await sender.send("jobs", {"type": "job", "n": 1})
        msg = await self.recv(receiver, "jobs")
        self.assertEqual(msg["n"], 1)
        await self.assertNothing(sender, "jobs")


class SyncCallerTest(LayerTestCase):
    async def test_async_to_sync_from_a_thread(self):
        """As a sync Django view does: async_to_sync on a fresh loop in a
        worker thread, whose connection closes with that loop."""
        layer = self.layer()
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        errors = []

        def view():
            try:
                async_to_sync(layer.group_send)("g", {"type": "from.sync"})
                async_to_sync(layer.send)(channel, {"type": "direct"})
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)

        thread = threading.Thread(target=view)
        thread.start()
        await asyncio.get_running_loop().run_in_executor(None, thread.join,
                                                         10)
        self.assertEqual(errors, [])
        got = {(await self.recv(layer, channel))["type"] for _ in range(2)}
        self.assertEqual(got, {"from.sync", "direct"})
        # The thread's loops are closed and so are their connections.
        self.assertEqual(len(layer._layers), 1)

    async def test_a_channel_belongs_to_the_loop_that_made_it(self):
        """docs/python.md: each async_to_sync call runs a new loop, and a
        new_channel() name is receivable on its own loop only: make and use
        it within one call."""
        layer = self.layer(send_timeout=0.5)
        results = {}

        async def make_send_receive():
            name = await layer.new_channel()
            await layer.send(name, {"type": "same.loop"})
            return await asyncio.wait_for(layer.receive(name), 5)

        def sync_code():
            try:
                name = async_to_sync(layer.new_channel)()
                try:
                    async_to_sync(layer.receive)(name)
                except RuntimeError as exc:
                    results["other_loop"] = exc
                results["one_call"] = async_to_sync(make_send_receive)()
            except Exception as exc:  # noqa: BLE001
                results["error"] = exc

        thread = threading.Thread(target=sync_code)
        thread.start()
        await asyncio.get_running_loop().run_in_executor(None, thread.join,
                                                         20)
        self.assertNotIn("error", results)
        self.assertIn("another process or event loop",
                      str(results["other_loop"]))
        self.assertEqual(results["one_call"], {"type": "same.loop"})


class BrokerRestartTest(LayerTestCase):
    async def test_group_send_that_timed_out_goes_out_after_the_reconnect(
            self):
        """docs/python.md: a group_send that raises sift.Timeout (the
        broker unreachable) may still be delivered: it stays queued in the
        client and is published after the reconnect."""
        own = Siftd("--log_level=warn").start()
        self.addCleanup(own.stop)
        layer = self.layer(endpoint=own.endpoint, send_timeout=0.5)
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        (inner,) = layer._layers.values()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, own.kill)
        deadline = time.monotonic() + 10
        while inner.client.is_connected and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        self.assertFalse(inner.client.is_connected)
        with self.assertRaises(sift.Timeout):
            await layer.group_send("g", {"type": "late"})
        await loop.run_in_executor(None, own.start)
        # Resubscribed first (the membership is held here), then the
        # queued publish: the message arrives.
        got = await asyncio.wait_for(layer.receive(channel), 15)
        self.assertEqual(got, {"type": "late"})

    async def test_groups_and_channels_work_after_a_broker_restart(self):
        layer = self.layer()
        channel = await layer.new_channel()
        await layer.group_add("g", channel)
        (inner,) = layer._layers.values()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.siftd.restart)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if inner.client.reconnects >= 1 and inner.client.is_connected:
                break
            await asyncio.sleep(0.05)
        self.assertGreaterEqual(inner.client.reconnects, 1)
        # Resubscribed: the membership, held here, works again.
        got = None
        while got is None and time.monotonic() < deadline:
            await layer.group_send("g", {"type": "after.restart"})
            try:
                got = await asyncio.wait_for(layer.receive(channel), 0.5)
            except asyncio.TimeoutError:
                pass
        self.assertEqual(got, {"type": "after.restart"})
        other = self.layer()
        await other.send(channel, {"type": "remote"})
        self.assertEqual((await self.recv(layer, channel))["type"], "remote")


CHILD = textwrap.dedent("""
    import asyncio, json, sys
    from sift.channels import SiftChannelLayer

    async def main(endpoint, prefix):
        layer = SiftChannelLayer(endpoint=endpoint, prefix=prefix)
        chans = [await layer.new_channel() for _ in range(3)]
        for c in chans:
            await layer.group_add("shared", c)
        print(json.dumps({"ready": chans}), flush=True)
        for c in chans:
            msg = await asyncio.wait_for(layer.receive(c), 10)
            print(json.dumps({"channel": c, "msg": msg}), flush=True)
        # The parent sends to our specific channel directly, too.
        msg = await asyncio.wait_for(layer.receive(chans[0]), 10)
        print(json.dumps({"channel": chans[0], "msg": msg}), flush=True)
        # And we group_send back to the parent's group.
        await layer.group_send("back", {"type": "from.child"})
        await layer.close()

    asyncio.run(main(sys.argv[1], sys.argv[2]))
""")


class TwoProcessesTest(LayerTestCase):
    async def test_group_shared_by_two_processes(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [os.path.dirname(_HERE)] + sys.path)
        proc = subprocess.Popen(
            ["/usr/bin/python3", "-c", CHILD, self.siftd.endpoint,
             self.prefix], stdout=subprocess.PIPE, env=env)

        def stop():
            if proc.poll() is None:
                os.kill(proc.pid, 9)
            proc.wait(5)
            proc.stdout.close()
        self.addCleanup(stop)
        loop = asyncio.get_running_loop()

        async def line():
            text = await asyncio.wait_for(
                loop.run_in_executor(None, proc.stdout.readline), 15)
            self.assertTrue(text, "the child process ended early")
            return json.loads(text)

        child_chans = (await line())["ready"]
        layer = self.layer()
        mine = [await layer.new_channel() for _ in range(2)]
        for c in mine:
            await layer.group_add("shared", c)
        back = await layer.new_channel()
        await layer.group_add("back", back)
        await layer.group_send("shared", {"type": "everyone", "n": 7})
        for c in mine:
            self.assertEqual(await self.recv(layer, c),
                             {"type": "everyone", "n": 7})
        seen = {}
        for _ in child_chans:
            out = await line()
            seen[out["channel"]] = out["msg"]
        self.assertEqual(seen, {c: {"type": "everyone", "n": 7}
                                for c in child_chans})
        await layer.send(child_chans[0], {"type": "direct"})
        self.assertEqual((await line())["msg"], {"type": "direct"})
        self.assertEqual((await self.recv(layer, back))["type"],
                         "from.child")
        self.assertEqual(await loop.run_in_executor(None, proc.wait, 10), 0)


if __name__ == "__main__":
    unittest.main()
