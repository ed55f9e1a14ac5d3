"""Arguments of the wrong type or value fail at once, in the caller, with an
error naming the argument (docs/python.md, "Arguments"): never later on the
wire, in the I/O thread or on a callback thread. Every blocking call has a
timeout: None, negative, NaN or infinite timeouts and delays are refused.
A request while the broker is down says so, naming the request."""

import asyncio
import time
import unittest

import sift
from support import AsyncBrokerTestCase, BrokerTestCase
from siftd import Siftd, wait_until

NAN = float("nan")
INF = float("inf")


class ArgumentTypesTest(BrokerTestCase):

    def assertArgumentType(self, call, *words):
        """``call()`` raises InvalidArgumentType (a TypeError and an
        InvalidRequest) whose text has each of ``words``."""
        with self.assertRaises(sift.InvalidArgumentType) as cm:
            call()
        e = cm.exception
        self.assertIsInstance(e, TypeError)
        self.assertIsInstance(e, sift.InvalidRequest)
        self.assertEqual(e.code, sift.ErrorCode.INVALID_REQUEST)
        for w in words:
            self.assertIn(w, str(e))
        return e

    def test_subscribe_refuses_a_wrong_ack_or_callback_at_once(self):
        c = self.client()
        t = self.topic()
        # Was: AttributeError: 'str' object has no attribute 'fill'.
        self.assertArgumentType(lambda: c.subscribe(t, ack="yes"),
                                "ack='yes'", "AckOptions")
        self.assertArgumentType(lambda: c.subscribe(t, ack=1), "ack=1")
        # Was accepted, and failed on the callback thread per message.
        self.assertArgumentType(lambda: c.subscribe(t, callback=42),
                                "callback=42", "not callable")
        # Nothing was subscribed by those: the broker holds only the good
        # one made now, and the client is fine.
        got = []
        c.subscribe(t, callback=got.append)
        c.publish_confirmed(t, b"one")
        self.assertTrue(wait_until(lambda: len(got) == 1, 5))
        time.sleep(0.1)
        self.assertEqual(len(got), 1)

    def test_every_call_checks_its_argument_types(self):
        c = self.client()
        t = self.topic()
        cases = [
            (lambda: c.publish(42), "topic=42"),
            (lambda: c.publish(t, 42), "payload=42"),
            (lambda: c.publish(t, headers=42), "headers=42"),
            (lambda: c.publish(t, headers="a=b"), "headers='a=b'"),
            (lambda: c.publish(t, headers={"k": 7}), "headers['k']=7"),
            (lambda: c.publish(t, retain="no"), "retain='no'"),
            (lambda: c.publish(t, delay="1"), "delay='1'"),
            (lambda: c.publish(t, deliver_at="soon"), "deliver_at='soon'"),
            (lambda: c.publish(t, reply_to=42), "reply_to=42"),
            (lambda: c.publish(t, msg_id=42), "msg_id=42"),
            (lambda: c.publish_confirmed(t, timeout="1"), "timeout='1'"),
            (lambda: c.request(t, 42), "payload=42"),
            (lambda: c.subscribe(42), "pattern=42"),
            (lambda: c.subscribe(t, queue_group=42), "queue_group=42"),
            (lambda: c.subscribe(t, filter=42), "filter=42"),
            (lambda: c.subscribe(t, plugins="sample"), "plugins='sample'"),
            (lambda: c.subscribe(t, plugins=[42]), "PluginSpec"),
            (lambda: c.subscribe(t, slow=42), "slow=42"),
            (lambda: c.subscribe(">", stream=42), "stream=42"),
            (lambda: c.subscribe(">", stream="s", consumer=42),
             "consumer=42"),
            (lambda: c.fetch("s", "3"), "batch='3'"),
            (lambda: c.fetch("s", 2.5), "batch=2.5"),
            (lambda: c.fetch("s", consumer="c", ack="yes"), "ack='yes'"),
            (lambda: c.fetch("s", wait="1"), "wait='1'"),
            (lambda: c.declare(t, "g", ack="yes"), "ack='yes'"),
            (lambda: c.declare(42, "g"), "pattern=42"),
            (lambda: c.ack("not a message"), "message='not a message'"),
            (lambda: c.nack(42), "message=42"),
            (lambda: c.in_progress(None), "message=None"),
            (lambda: c.add_stream("s", 42), "subjects=42"),
            (lambda: c.add_stream(42, "x.>"), "name=42"),
            (lambda: c.add_stream("s", "x.>", max_msgs="9"), "max_msgs='9'"),
            (lambda: c.stream_info(42), "name=42"),
            (lambda: c.delete_stream(b"ok", timeout=[]), "timeout=[]"),
            (lambda: c.delete_consumer("s", 42), "consumer=42"),
            (lambda: c.stats(timeout="5"), "timeout='5'"),
            (lambda: sift.AckOptions(ack_wait="5"), "ack_wait='5'"),
            (lambda: sift.AckOptions(max_deliver=1.5), "max_deliver=1.5"),
            (lambda: sift.PluginSpec(42), "PluginSpec name=42"),
            (lambda: sift.PluginSpec("p", {"k": 1}), "setting 'k'=1"),
            (lambda: sift.StreamStart("s", consumer=42), "consumer=42"),
            (lambda: sift.StreamStart(42), "stream=42"),
            (lambda: sift.Client(self.siftd.endpoint, error_callback=42),
             "error_callback=42"),
            (lambda: sift.Client(self.siftd.endpoint, reconnect="no"),
             "reconnect='no'"),
            (lambda: sift.Client(self.siftd.endpoint, name=42), "name=42"),
            (lambda: sift.Client(self.siftd.endpoint, ping_interval="1"),
             "ping_interval='1'"),
            (lambda: sift.Client(self.siftd.endpoint, max_pending="9"),
             "max_pending='9'"),
            (lambda: sift.Client(self.siftd.endpoint, context=42),
             "context=42"),
        ]
        for call, words in cases:
            with self.subTest(words):
                self.assertArgumentType(call, words)
        # None of it reached the broker or broke the client.
        self.assertEqual(c.publish_confirmed(t, b"fine"), sift.PublishAck())
        self.assertTrue(c.is_connected)

    def test_subscription_calls_check_their_arguments(self):
        c = self.client()
        sub = c.subscribe(self.topic())
        self.assertArgumentType(lambda: sub.next("1"), "timeout='1'")
        self.assertArgumentType(lambda: sub.unsubscribe(timeout="1"),
                                "timeout='1'")
        self.assertFalse(sub.closed)  # the bad call did not unsubscribe


class TimeoutsTest(BrokerTestCase):
    """None, negative, NaN and infinite timeouts and delays are refused up
    front with a ValueError (InvalidRequest) naming the argument."""

    def assertBadValue(self, call, *words):
        with self.assertRaises(sift.InvalidRequest) as cm:
            call()
        self.assertIsInstance(cm.exception, ValueError)
        self.assertNotIsInstance(cm.exception, sift.Timeout)
        for w in words:
            self.assertIn(w, str(cm.exception))

    def test_blocking_calls_refuse_none_negative_nan_and_infinite(self):
        c = self.client()
        t = self.topic()
        sub = c.subscribe(t)
        calls = {
            "publish_confirmed": lambda v: c.publish_confirmed(t, b"x",
                                                               timeout=v),
            "request": lambda v: c.request(t, b"x", timeout=v),
            "subscribe": lambda v: c.subscribe(t + ".more", timeout=v),
            "stats": lambda v: c.stats(timeout=v),
            "reload": lambda v: c.reload(timeout=v),
            "declare": lambda v: c.declare(t, "g", timeout=v),
            "fetch": lambda v: c.fetch("s", timeout=v),
            "add_stream": lambda v: c.add_stream("s", "s.>", timeout=v),
            "stream_info": lambda v: c.stream_info("s", timeout=v),
            "streams": lambda v: c.streams(timeout=v),
            "delete_stream": lambda v: c.delete_stream("s", timeout=v),
            "delete_consumer": lambda v: c.delete_consumer("s", "c",
                                                           timeout=v),
            "unsubscribe": lambda v: sub.unsubscribe(timeout=v),
            "close": lambda v: c.close(timeout=v),
        }
        for name, call in calls.items():
            with self.subTest(name):
                # Was: waited with no limit (publish_confirmed), or a
                # TypeError deep inside, or "within None s".
                self.assertBadValue(lambda: call(None), "timeout=None",
                                    "every blocking call")
                # Was: Timeout "... within -1 s" after sending it.
                self.assertBadValue(lambda: call(-1), "timeout=-1",
                                    "negative")
                self.assertBadValue(lambda: call(NAN), "timeout=nan")
                self.assertBadValue(lambda: call(INF), "timeout=inf")
        # Nothing was published, subscribed, unsubscribed or closed.
        self.assertFalse(c.is_closed)
        self.assertFalse(sub.closed)
        with self.assertRaises(sift.Timeout):
            sub.next(0.2)
        c.publish_confirmed(t, b"after")
        self.assertEqual(sub.next(5).payload, b"after")

    def test_negative_and_nan_delays_and_waits(self):
        c = self.client()
        t = self.topic()
        sub = c.subscribe(t)
        # Was: a bare "cannot convert float NaN to integer".
        self.assertBadValue(lambda: c.publish(t, delay=NAN), "delay=nan")
        self.assertBadValue(lambda: c.publish(t, delay=-1), "delay=-1",
                            "negative")
        self.assertBadValue(lambda: c.publish(t, delay=INF), "delay=inf")
        self.assertBadValue(lambda: c.publish(t, deliver_at=NAN),
                            "deliver_at=nan")
        self.assertBadValue(lambda: c.fetch("s", wait=-1), "wait=-1")
        self.assertBadValue(lambda: c.fetch("s", wait=NAN), "wait=nan")
        # next(): None waits for a message (iteration); a number is a limit.
        self.assertBadValue(lambda: sub.next(-1), "timeout=-1")
        self.assertBadValue(lambda: sub.next(NAN), "timeout=nan")
        self.assertBadValue(lambda: c.add_stream("s", "s.>", max_age=NAN),
                            "max_age=nan")
        self.assertBadValue(lambda: sift.AckOptions(ack_wait=-1),
                            "ack_wait=-1")
        self.assertBadValue(lambda: sift.AckOptions(backoff_jitter=NAN),
                            "backoff_jitter=nan")
        self.assertBadValue(
            lambda: sift.Client(self.siftd.endpoint, connect_timeout=None),
            "connect_timeout=None")
        self.assertBadValue(
            lambda: sift.Client(self.siftd.endpoint, connect_timeout=-1),
            "connect_timeout=-1")
        self.assertBadValue(
            lambda: sift.Client(self.siftd.endpoint, ping_interval=0),
            "ping_interval=0")
        with self.assertRaises(sift.Timeout):
            sub.next(0.2)  # nothing was published by the refused calls
        # Explicit acks: timeout None is fire-and-forget (documented), a
        # number is a limit, a bad number is refused.
        acked = c.subscribe(self.topic("acked"), ack=True)
        c.publish(acked.pattern, b"a")
        m = acked.next(5)
        self.assertBadValue(lambda: m.ack(timeout=-1), "timeout=-1")
        self.assertBadValue(lambda: m.nack(delay=NAN), "delay=nan")
        self.assertBadValue(lambda: m.in_progress(timeout=NAN),
                            "timeout=nan")
        m.ack(timeout=5)


class AsyncArgumentsTest(AsyncBrokerTestCase):

    async def test_async_calls_check_types_and_timeouts(self):
        c = await self.client()
        t = self.topic()
        with self.assertRaises(sift.InvalidArgumentType) as cm:
            await c.subscribe(t, ack="yes")
        self.assertIn("ack='yes'", str(cm.exception))
        with self.assertRaises(sift.InvalidArgumentType) as cm:
            await c.subscribe(t, callback=42)
        self.assertIn("callback=42", str(cm.exception))
        with self.assertRaises(sift.InvalidArgumentType):
            await c.publish(t, headers=42)
        with self.assertRaises(sift.InvalidArgumentType):
            await c.ack("not a message")
        with self.assertRaises(sift.InvalidArgumentType):
            await c.declare(t, "g", ack="yes")
        with self.assertRaises(sift.InvalidArgumentType):
            sift.AsyncClient(self.siftd.endpoint, error_callback=42)
        sub = await c.subscribe(t)
        for bad, word in ((None, "timeout=None"), (-1, "timeout=-1"),
                          (NAN, "timeout=nan"), (INF, "timeout=inf")):
            for name, call in (
                    ("publish_confirmed",
                     lambda: c.publish_confirmed(t, b"x", timeout=bad)),
                    ("request", lambda: c.request(t, b"x", timeout=bad)),
                    ("subscribe", lambda: c.subscribe(t + ".y", timeout=bad)),
                    ("stats", lambda: c.stats(timeout=bad)),
                    ("fetch", lambda: c.fetch("s", timeout=bad)),
                    ("unsubscribe", lambda: sub.unsubscribe(timeout=bad)),
                    ("close", lambda: c.close(timeout=bad))):
                with self.subTest(name=name, value=bad):
                    with self.assertRaises(sift.InvalidRequest) as cm:
                        await call()
                    self.assertIn(word, str(cm.exception))
        with self.assertRaises(sift.InvalidRequest):
            await c.publish(t, delay=NAN)
        with self.assertRaises(sift.InvalidRequest):
            await sub.next(-1)
        with self.assertRaises(sift.Timeout):
            await sub.next(0.2)  # nothing was sent by the refused calls
        await c.publish_confirmed(t, b"after")
        self.assertEqual((await sub.next(5)).payload, b"after")


class RequestWhileDownTest(unittest.TestCase):
    """request() while the broker is down: the Timeout names the request and
    says the broker is unreachable (it said "subscribe to '_INBOX...>'")."""

    def setUp(self):
        self.own = Siftd("--log_level=warn").start()
        self.addCleanup(self.own.stop)

    def check(self, e, topic):
        text = str(e)
        self.assertIn(repr(topic), text)
        self.assertIn("unreachable", text)
        self.assertIn("reconnecting", text)
        self.assertNotIn("_INBOX", text)

    def test_first_request_while_down(self):
        c = sift.Client(self.own.endpoint)
        self.addCleanup(c.close, 0.5)
        self.own.kill()
        self.assertTrue(wait_until(lambda: not c.is_connected, 10))
        with self.assertRaises(sift.Timeout) as cm:
            c.request("svc.price", b"?", timeout=0.5)
        self.check(cm.exception, "svc.price")

    def test_later_request_while_down(self):
        c = sift.Client(self.own.endpoint)
        self.addCleanup(c.close, 0.5)
        c.subscribe("svc.echo", callback=lambda m: m.respond(m.payload))
        self.assertEqual(c.request("svc.echo", b"1", timeout=5).payload,
                         b"1")  # the inbox exists now
        self.own.kill()
        self.assertTrue(wait_until(lambda: not c.is_connected, 10))
        with self.assertRaises(sift.Timeout) as cm:
            c.request("svc.echo", b"2", timeout=0.5)
        self.check(cm.exception, "svc.echo")


class AsyncRequestWhileDownTest(AsyncBrokerTestCase):

    async def test_first_request_while_down(self):
        own = Siftd("--log_level=warn").start()
        self.addCleanup(own.stop)
        c = await sift.AsyncClient.connect(own.endpoint)
        self.addAsyncCleanup(c.close, 0.5)
        own.kill()
        for _ in range(1000):
            if not c.is_connected:
                break
            await asyncio.sleep(0.01)
        self.assertFalse(c.is_connected)
        with self.assertRaises(sift.Timeout) as cm:
            await c.request("svc.price", b"?", timeout=0.5)
        text = str(cm.exception)
        self.assertIn("'svc.price'", text)
        self.assertIn("unreachable", text)
        self.assertNotIn("_INBOX", text)


if __name__ == "__main__":
    unittest.main()
