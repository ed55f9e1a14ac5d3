"""Losing the broker: the clients say HELLO again after a siftd restart (or
crash), resubscribe everything (the inbox under its new prefix), and send
what waited meanwhile."""

import asyncio
import threading
import time
import unittest

import sift
from siftd import Siftd, wait_until


class ReconnectTest(unittest.TestCase):

    def setUp(self):
        self.siftd = Siftd("--log_level=warn").start()
        self.addCleanup(self.siftd.stop)

    def client(self, **kw):
        c = sift.Client(self.siftd.endpoint, **kw)
        self.addCleanup(c.close, 1.0)
        return c

    def test_restart_resubscribes_and_requests_work_again(self):
        c = self.client()
        sub = c.subscribe("orders.>")
        c.subscribe("svc.echo", queue_group="svc",
                    callback=lambda m: m.respond(m.payload))
        self.assertEqual(c.request("svc.echo", b"1", timeout=5).payload, b"1")
        old_id = c.client_id
        self.siftd.restart()
        self.assertTrue(wait_until(lambda: c.reconnects >= 1, 10),
                        "no new session within 10 s")
        self.assertTrue(c.is_connected)
        self.assertNotEqual(c.client_id, old_id)
        # Subscriptions are back: another client's publish arrives.
        pub = self.client()
        pub.publish_confirmed("orders.eu", b"after restart")
        self.assertEqual(sub.next(5).payload, b"after restart")
        # The inbox moved to the new prefix, and the responder is back.
        self.assertEqual(c.request("svc.echo", b"2", timeout=5).payload, b"2")

    def test_acks_of_an_earlier_session_are_refused_not_sent(self):
        # A restarted broker numbers its deliveries from 1 again: acks of
        # messages from before the restart would acknowledge others.
        c = self.client()
        sub = c.subscribe("jobs.>", ack=True)
        pub = self.client()
        for i in range(5):
            pub.publish_confirmed("jobs.x", b"old%d" % i)
        old = [sub.next(5) for _ in range(5)]
        self.assertEqual([m.delivery_id for m in old], [1, 2, 3, 4, 5])
        old[0].ack()  # queued for the old session, maybe not sent yet
        self.siftd.restart()
        self.assertTrue(wait_until(lambda: c.reconnects >= 1, 10),
                        "no new session within 10 s")
        self.assertTrue(wait_until(lambda: pub.reconnects >= 1, 10))
        for i in range(5):
            pub.publish_confirmed("jobs.x", b"new%d" % i)
        new = [sub.next(5) for _ in range(5)]
        self.assertEqual([m.payload for m in new],
                         [b"new%d" % i for i in range(5)])
        # Same ids as the old ones, in the new session.
        self.assertEqual([m.delivery_id for m in new], [1, 2, 3, 4, 5])
        for m in old[1:]:
            with self.assertRaisesRegex(sift.UnknownDelivery,
                                        "earlier session"):
                m.ack()
            with self.assertRaises(sift.UnknownDelivery):
                m.nack(timeout=5)
        # The new deliveries are all still in flight: each acks once.
        for m in new:
            m.ack(timeout=5)

    def test_calls_during_an_outage_complete_after_it(self):
        c = self.client()
        sub = c.subscribe("jobs")
        self.siftd.kill()  # a crash: no goodbyes
        self.assertTrue(wait_until(lambda: not c.is_connected, 10))
        results = []

        def confirmed():
            try:
                c.publish_confirmed("jobs", b"queued while down", timeout=10)
                results.append("ok")
            except sift.SiftError as e:
                results.append(e)
        t = threading.Thread(target=confirmed)
        t.start()
        c.publish("jobs", b"fire-and-forget while down")
        time.sleep(0.3)
        self.siftd.start()
        t.join(15)
        self.assertEqual(results, ["ok"])
        got = {sub.next(5).payload, sub.next(5).payload}
        self.assertEqual(got, {b"queued while down",
                               b"fire-and-forget while down"})
        self.assertEqual(c.reconnects, 1)

    def test_a_down_broker_gives_timeouts_not_hangs(self):
        c = self.client()
        self.siftd.kill()
        self.assertTrue(wait_until(lambda: not c.is_connected, 10))
        start = time.monotonic()
        with self.assertRaises(sift.Timeout) as cm:
            c.stats(timeout=0.3)
        self.assertIn("reconnecting", str(cm.exception))
        with self.assertRaises(sift.Timeout):
            c.subscribe("x", timeout=0.3)
        with self.assertRaises(sift.Timeout):
            c.request("x", b"", timeout=0.3)
        self.assertLess(time.monotonic() - start, 3.0)
        c.close(0.2)

    def test_hello_required_without_a_disconnect(self):
        """The broker ends the session but the connection stays (as after a
        session timeout): the next request gets HELLO_REQUIRED, and the
        client says HELLO, resubscribes and resends it."""
        from sift import _wire
        c = self.client()
        sub = c.subscribe("hr.>")
        with c._lock:
            c._session.control.append([_wire.bye()])  # behind its back
        c._wake()
        self.assertTrue(wait_until(
            lambda: self.siftd_clients(c) == 0, 5), "BYE not seen")
        c.publish_confirmed("hr.x", b"resent", timeout=5)
        self.assertEqual(c.reconnects, 1)
        self.assertEqual(sub.next(5).payload, b"resent")

    def siftd_clients(self, c):
        """Sessions the broker holds, asked by another client (minus it)."""
        with sift.Client(self.siftd.endpoint) as other:
            return other.stats().clients - 1

    def test_async_client_reconnects(self):
        async def run():
            c = await sift.AsyncClient.connect(self.siftd.endpoint)
            try:
                sub = await c.subscribe("news.>")
                self.siftd.restart()
                deadline = time.monotonic() + 10
                while c.reconnects < 1 and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                self.assertEqual(c.reconnects, 1)
                await c.publish_confirmed("news.x", b"hello again")
                self.assertEqual((await sub.next(5)).payload, b"hello again")
                self.assertEqual((await c.stats()).subscriptions, 1)
            finally:
                await c.close()
        asyncio.run(run())

    def test_async_acks_of_an_earlier_session_are_refused(self):
        async def run():
            c = await sift.AsyncClient.connect(self.siftd.endpoint)
            try:
                sub = await c.subscribe("jobs.>", ack=True)
                await c.publish_confirmed("jobs.x", b"old")
                old = await sub.next(5)
                self.siftd.restart()
                deadline = time.monotonic() + 10
                while c.reconnects < 1 and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                self.assertEqual(c.reconnects, 1)
                await c.publish_confirmed("jobs.x", b"new")
                new = await sub.next(5)
                self.assertEqual(new.delivery_id, old.delivery_id)
                with self.assertRaisesRegex(sift.UnknownDelivery,
                                            "earlier session"):
                    await old.ack()
                await new.ack(timeout=5)  # still in flight: not acked
            finally:
                await c.close()
        asyncio.run(run())

    def test_acks_after_the_connection_dropped_are_refused_at_once(self):
        # The broker ends a session whose connection closes, so no later
        # session could apply these acks: they fail as soon as the client
        # knows, not at their timeout (with the broker gone for good, each
        # ack(timeout=...) waited all of it).
        c = self.client()
        sub = c.subscribe("jobs.>", ack=True)
        pub = self.client()
        pub.publish_confirmed("jobs.x", b"a")
        pub.publish_confirmed("jobs.x", b"b")
        a, b = sub.next(5), sub.next(5)
        self.siftd.kill()
        self.assertTrue(wait_until(lambda: not c.is_connected, 10))
        start = time.monotonic()
        with self.assertRaisesRegex(sift.UnknownDelivery, "has ended"):
            a.ack(timeout=20)
        self.assertLess(time.monotonic() - start, 10)
        with self.assertRaisesRegex(sift.UnknownDelivery, "has ended"):
            b.ack()
        c.close(0.2)
        pub.close(0.2)

    def test_a_subscription_the_new_broker_refuses_ends_saying_which(self):
        # A broker back with a lower limit refuses one of the SUBs sent
        # again after the reconnect: that subscription ends with an error
        # naming it and the reconnect; the other goes on.
        errors = []
        c = self.client(error_callback=errors.append)
        a = c.subscribe("a.>")
        b = c.subscribe("b.>")
        self.siftd.stop()
        self.siftd.flags.append("--max_subscriptions_per_client=1")
        self.siftd.start()
        self.assertTrue(wait_until(lambda: len(errors) > 0, 15), errors)
        refused = errors[0]
        self.assertIsInstance(refused, sift.TooManySubscriptions)
        self.assertRegex(str(refused), r"subscription to [ab]\.> ended: the "
                         "broker refused it when the client subscribed "
                         "again after a reconnect")
        ended, kept = (a, b) if "a.>" in str(refused) else (b, a)
        with self.assertRaises(sift.TooManySubscriptions):
            ended.next(5)
        pub = self.client()
        topic = "a.x" if kept is a else "b.x"
        pub.publish_confirmed(topic, b"still here")
        self.assertEqual(kept.next(10).payload, b"still here")

    def test_an_ack_sent_before_the_connection_dropped_fails_at_once(self):
        # Sent, not yet answered (the broker is stopped), when the
        # connection drops: no answer can come, so ack(timeout=...) raises
        # NotConnected as soon as the client knows, not after 20 s.
        c = self.client()
        sub = c.subscribe("jobs.>", ack=True)
        pub = self.client()
        pub.publish_confirmed("jobs.x", b"a")
        a = sub.next(5)
        self.siftd.pause()
        outcome = []

        def ack():
            start = time.monotonic()
            try:
                a.ack(timeout=20)
                outcome.append(("ok", time.monotonic() - start))
            except sift.SiftError as e:
                outcome.append((e, time.monotonic() - start))

        t = threading.Thread(target=ack)
        t.start()
        time.sleep(0.5)  # sent: the kernel takes it while siftd is stopped
        self.assertEqual(outcome, [])
        self.siftd.kill()
        t.join(25)
        self.assertFalse(t.is_alive())
        err, seconds = outcome[0]
        self.assertIsInstance(err, sift.NotConnected)
        self.assertIn("may or may not have taken effect", str(err))
        self.assertLess(seconds, 10)
        c.close(0.2)
        pub.close(0.2)

    def test_async_acks_after_the_connection_dropped_are_refused(self):
        async def run():
            c = await sift.AsyncClient.connect(self.siftd.endpoint)
            try:
                sub = await c.subscribe("jobs.>", ack=True)
                await c.publish_confirmed("jobs.x", b"a")
                a = await sub.next(5)
                self.siftd.kill()
                deadline = time.monotonic() + 10
                while c.is_connected and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                self.assertFalse(c.is_connected)
                start = time.monotonic()
                with self.assertRaisesRegex(sift.UnknownDelivery,
                                            "has ended"):
                    await a.ack(timeout=20)
                self.assertLess(time.monotonic() - start, 10)
            finally:
                await c.close(0.2)
        asyncio.run(run())


if __name__ == "__main__":
    unittest.main()
