"""sift.AsyncClient (asyncio) against a real siftd."""

import asyncio
import time
import unittest

import sift
from sift import _wire
from sift._queue import AsyncQueue
from sift._session import OK
from siftd import free_port
from support import AsyncBrokerTestCase


class AsyncQueueTest(unittest.IsolatedAsyncioTestCase):
    async def test_a_cancelled_waiter_passes_its_wake_up_on(self):
        # Two next() calls wait; a message wakes the first, which is
        # cancelled before it runs (a wait_for running out): the second
        # must get the message, not wait for another one.
        q = AsyncQueue(100, 1 << 20)
        first = asyncio.ensure_future(q.pop(None))
        second = asyncio.ensure_future(q.pop(None))
        await asyncio.sleep(0)  # both waiting
        q.push(sift.Message("t", b"only"))
        first.cancel()
        got = await asyncio.wait_for(second, 5)
        self.assertEqual(got.payload, b"only")
        with self.assertRaises(asyncio.CancelledError):
            await first


class AsyncClientTest(AsyncBrokerTestCase):

    async def test_round_trip_async_for_and_headers(self):
        c = await self.client(name="async-test")
        self.assertTrue(c.is_connected)
        t = self.topic()
        sub = await c.subscribe(t + ".>")
        for i in range(500):
            await c.publish(t + ".n", b"%d" % i,
                            headers=[("i", str(i))] if i == 7 else None)
        got = []
        async for m in sub:
            self.assertIsInstance(m, sift.AsyncMessage)
            got.append(int(m.payload))
            if m.payload == b"7":
                self.assertEqual(m.header("i"), b"7")
            if len(got) == 500:
                break
        self.assertEqual(got, list(range(500)))
        with self.assertRaises(sift.Timeout):
            await sub.next(0.1)

    async def test_callbacks_request_reply_and_queue_groups(self):
        c, other = await self.client(), await self.client()
        t = self.topic()

        async def upper(m):
            await m.respond(m.payload.upper())
        await other.subscribe(t, queue_group="svc", callback=upper)
        await other.subscribe(t, queue_group="svc",
                              callback=lambda m: asyncio.ensure_future(
                                  m.respond(m.payload.upper())))
        replies = await asyncio.gather(
            *(c.request(t, b"req%d" % i, timeout=5) for i in range(20)))
        self.assertEqual(sorted(r.payload for r in replies),
                         sorted(b"REQ%d" % i for i in range(20)))
        with self.assertRaises(sift.Timeout):
            await c.request(self.topic(), b"nobody", timeout=0.2)

    async def test_a_callback_may_await_another_callback(self):
        c = await self.client()
        t = self.topic()
        await c.subscribe(t + ".svc", callback=lambda m: m.respond(b"pong"))
        done = asyncio.get_running_loop().create_future()

        async def on_message(m):
            done.set_result((await c.request(t + ".svc", b"?", timeout=5))
                            .payload)
        await c.subscribe(t, callback=on_message)
        await c.publish(t, b"go")
        self.assertEqual(await asyncio.wait_for(done, 10), b"pong")

    async def test_errors(self):
        c = await self.client()
        await c.publish_confirmed(self.topic(), b"ok")
        with self.assertRaises(sift.InvalidTopic):
            await c.publish("a..b", b"")
        with self.assertRaises(sift.Forbidden):
            await c.publish_confirmed("$sift.x", b"")
        rid = c._session.next_id()
        with self.assertRaises(sift.Forbidden):  # the broker's own answer
            await c._call(OK, [_wire.pub(rid, b"$sift.x", b"", True, []),
                               b""], rid, 5, "raw")
        other = await self.client()
        with self.assertRaises(sift.Forbidden):
            await c.subscribe(other.inbox_prefix + ".x")
        with self.assertRaises(sift.InvalidFilter):
            await c.subscribe("a", filter="==")
        stats = await c.stats()
        self.assertGreaterEqual(stats.clients, 2)

    async def test_acks(self):
        c = await self.client()
        t = self.topic()
        sub = await c.subscribe(t, ack=sift.AckOptions(ack_wait=5))
        await c.publish(t, b"task")
        m = await sub.next(5)
        await m.nack(delay=0.05)
        again = await sub.next(5)
        self.assertEqual(again.attempt, 2)
        await again.in_progress(timeout=5)
        await again.ack(timeout=5)
        with self.assertRaises(sift.UnknownDelivery):
            await m.ack(timeout=5)

    async def test_close_ends_iteration_and_calls(self):
        c = await sift.AsyncClient.connect(self.siftd.endpoint)
        sub = await c.subscribe(self.topic())
        waiter = asyncio.ensure_future(sub.next(10))
        await asyncio.sleep(0.05)
        await c.close()
        await c.close()
        with self.assertRaises(sift.SubscriptionClosed):
            await asyncio.wait_for(waiter, 5)
        self.assertEqual([m async for m in sub], [])
        with self.assertRaises(sift.ClientClosed):
            await c.publish("a.b", b"")

    async def test_connect_timeout_and_context_manager(self):
        start = time.monotonic()
        with self.assertRaises(sift.Timeout):
            await sift.AsyncClient.connect(f"tcp://127.0.0.1:{free_port()}",
                                           connect_timeout=0.3)
        self.assertLess(time.monotonic() - start, 3.0)
        async with sift.AsyncClient(self.siftd.endpoint) as c:
            await c.publish(self.topic(), b"x")
        self.assertTrue(c.is_closed)
        with self.assertRaises(sift.NotConnected):
            await sift.AsyncClient(self.siftd.endpoint).publish("a", b"")


if __name__ == "__main__":
    import unittest
    unittest.main()
