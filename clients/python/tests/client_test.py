"""sift.Client (blocking) against a real siftd."""

import asyncio
import os
import subprocess
import sys
import tempfile
import threading
import time

import sift
from sift import _wire
from sift._session import OK
from siftd import free_port
from support import BrokerTestCase, wait_until


class ConnectTest(BrokerTestCase):

    def test_connect_says_hello_and_keeps_the_limits(self):
        c = self.client(name="connect-test")
        self.assertTrue(c.is_connected)
        self.assertRegex(c.client_id, r"^c\d+-[0-9a-z]{10}$")
        self.assertEqual(c.inbox_prefix, "_INBOX." + c.client_id)
        self.assertTrue(c.server_version.startswith("siftd"))
        self.assertEqual(c.limits.max_payload_bytes, 1 << 20)
        self.assertEqual(c.limits.max_headers, 64)

    def test_connect_times_out_without_a_broker(self):
        start = time.monotonic()
        with self.assertRaises(sift.Timeout) as cm:
            sift.Client(f"tcp://127.0.0.1:{free_port()}",
                        connect_timeout=0.3)
        self.assertLess(time.monotonic() - start, 3.0)
        self.assertIn("is siftd running there?", str(cm.exception))

    def test_connect_names_a_missing_ipc_socket_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "nobody.sock")
            with self.assertRaises(sift.Timeout) as cm:
                sift.Client(f"ipc://{path}", connect_timeout=0.3)
            self.assertEqual(
                str(cm.exception),
                f"cannot connect to ipc://{path}: no answer within 0.3 s: "
                f"there is no socket file {path} (No such file or "
                "directory); is siftd running there?")

            async def connect():
                await sift.AsyncClient.connect(f"ipc://{path}",
                                               connect_timeout=0.3)
            with self.assertRaises(sift.Timeout) as cm:
                asyncio.run(connect())
            self.assertIn(f"there is no socket file {path}", str(cm.exception))

    def test_connect_explains_inproc_and_long_ipc_paths(self):
        with self.assertRaises(sift.Timeout) as cm:
            sift.Client("inproc://nobody", connect_timeout=0.2)
        self.assertIn("siftd runs in its own: use tcp:// or ipc://",
                      str(cm.exception))
        start = time.monotonic()
        with self.assertRaises(sift.SiftError) as cm:
            sift.Client("ipc:///" + "a" * 107, connect_timeout=5)
        self.assertLess(time.monotonic() - start, 1.0)
        self.assertIn("its path is 108 bytes, over the 107 a Unix socket's "
                      "path may have", str(cm.exception))

    def test_module_main_exits_2_for_a_bad_endpoint(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in sys.path if p)  # this sift and its generated module
        run = subprocess.run(
            ["/usr/bin/python3", "-m", "sift", "--endpoint", "bogus", "stats"],
            capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(run.returncode, 2, run.stderr)
        self.assertIn("invalid endpoint 'bogus'", run.stderr)
        for endpoint, said in (("inproc://x", "reaches only a broker"),
                               ("ipc://", "no path (ipc://PATH)"),
                               ("http://x:1", "unknown transport 'http://'"),
                               ("TCP://127.0.0.1:1",
                                "unknown transport 'TCP://'")):
            run = subprocess.run(
                ["/usr/bin/python3", "-m", "sift", "--endpoint", endpoint,
                 "stats"], capture_output=True, text=True, timeout=30,
                env=env)
            self.assertEqual(run.returncode, 2, endpoint + run.stderr)
            self.assertIn(said, run.stderr)
        # Arguments that are not UTF-8 (surrogateescape in sys.argv) are
        # sent as their bytes, for the broker to judge: one line, exit 1.
        run = subprocess.run(
            [b"/usr/bin/python3", b"-m", b"sift", b"--endpoint",
             self.siftd.endpoint.encode(), b"pub", b"t.\xe9", b"hi"],
            capture_output=True, timeout=30, env=env)
        self.assertEqual(run.returncode, 1, run.stderr)
        self.assertEqual(
            run.stderr,
            b'python3 -m sift: INVALID_TOPIC: invalid topic "t.\\xE9": byte '
            b'0xE9 at offset 2 is not allowed\n')

    def test_bad_endpoint_and_name(self):
        with self.assertRaises(sift.SiftError):
            sift.Client("localhost:7440")
        with self.assertRaises(sift.SiftError):
            sift.Client("bogus://x", connect_timeout=0.2)
        with self.assertRaises(sift.SiftError):
            sift.Client(self.siftd.endpoint, name="n" * 257)
        # A tcp:// port ZeroMQ would take and retry until the timeout is
        # refused at once, as the C++ client does.
        for endpoint, problem in (
                ("tcp://127.0.0.1:99999", "port 99999 is out of range"),
                ("tcp://127.0.0.1:0", "port 0 is out of range"),
                ("tcp://127.0.0.1:74x0", "is not a number from 1 to 65535"),
                ("tcp://127.0.0.1", "no port"),
                ("tcp://:7440", "no host")):
            start = time.monotonic()
            with self.assertRaisesRegex(sift.SiftError, problem):
                sift.Client(endpoint, connect_timeout=20)
            self.assertLess(time.monotonic() - start, 10)

    def test_close_is_idempotent_and_ends_everything(self):
        c = sift.Client(self.siftd.endpoint)
        sub = c.subscribe(self.topic())
        results = []

        def wait_next():
            try:
                sub.next(10)
            except sift.SiftError as e:
                results.append(e)
        t = threading.Thread(target=wait_next)
        t.start()
        time.sleep(0.05)
        c.close()
        c.close()
        t.join(5)
        self.assertFalse(t.is_alive())
        self.assertIsInstance(results[0], sift.SubscriptionClosed)
        with self.assertRaises(sift.ClientClosed):
            c.publish("a.b", b"")
        with self.assertRaises(sift.ClientClosed):
            c.stats(1)

    def test_context_manager_closes(self):
        with sift.Client(self.siftd.endpoint) as c:
            c.publish(self.topic(), b"x")
        self.assertTrue(c.is_closed)


class PubSubTest(BrokerTestCase):

    def test_round_trip_with_wildcards(self):
        c = self.client()
        base = self.topic("orders")
        star = c.subscribe(base + ".*.created")
        tail = c.subscribe(base + ".>")
        c.publish(base + ".eu.created", b"\x00bin", reply_to="answers.here")
        c.publish(base + ".eu.deleted", "text é")
        c.publish(base + ".us.created", b"")
        m = star.next(5)
        self.assertEqual((m.topic, m.payload, m.reply_to, m.sid),
                         (base + ".eu.created", b"\x00bin", "answers.here",
                          star.sid))
        self.assertEqual(star.next(5).topic, base + ".us.created")
        got = [tail.next(5) for _ in range(3)]
        self.assertEqual([g.payload for g in got],
                         [b"\x00bin", "text é".encode(), b""])
        with self.assertRaises(sift.Timeout):
            star.next(0.1)

    def test_sends_go_out_at_once_after_a_busy_second(self):
        # A publishing thread and the I/O thread race on the wake-up flag
        # for a second; a lost wake-up used to leave every later send
        # waiting for the 5 s ping tick (seen with Celery as tasks held).
        pub, sub_client = self.client(), self.client()
        t = self.topic()
        sub = sub_client.subscribe(t)
        noise = self.topic("noise")
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            pub.publish(noise, b"x")
        for i in range(5):
            pub.publish(t, b"probe %d" % i)
            # Well under the ping interval (5 s): sent when asked.
            self.assertEqual(sub.next(2.0).payload, b"probe %d" % i)
            pub.publish_confirmed(t, b"confirmed", timeout=2.0)
            self.assertEqual(sub.next(2.0).payload, b"confirmed")

    def test_order_kept_through_batches(self):
        pub, sub_client = self.client(), self.client()
        t = self.topic()
        sub = sub_client.subscribe(t)
        n = 3000
        for i in range(n):
            pub.publish(t, b"%d" % i)
        got = [int(sub.next(10).payload) for _ in range(n)]
        self.assertEqual(got, list(range(n)))

    def test_batched_and_unbatched_deliveries(self):
        pub = self.client()
        batched = self.client()
        plain = self.client(accepts_batches=False)
        t = self.topic()
        subs = [batched.subscribe(t), plain.subscribe(t)]
        seen = []
        on_batch = batched._session._on_batch
        batched._session._on_batch = lambda body: (seen.append(1),
                                                   on_batch(body))
        n = 2000
        for i in range(n):
            pub.publish(t, b"%d" % i, headers={"i": str(i)} if i % 7 else None)
        for sub in subs:
            got = [sub.next(10) for _ in range(n)]
            self.assertEqual([int(m.payload) for m in got], list(range(n)))
            self.assertEqual(got[8].header("i"), b"8")
        self.assertGreater(len(seen), 0, "the broker sent no BATCH")

    def test_headers_round_trip(self):
        c = self.client()
        t = self.topic()
        sub = c.subscribe(t)
        c.publish(t, b"1", headers={"region": "eu", "bin": b"\x00\xff"})
        c.publish(t, b"2", headers=[("k", "a"), ("k", "b"), ("empty", "")])
        c.publish(t, b"3")
        m1, m2, m3 = sub.next(5), sub.next(5), sub.next(5)
        self.assertEqual(m1.headers, [("region", b"eu"), ("bin", b"\x00\xff")])
        self.assertEqual(m1.header("region"), b"eu")
        self.assertIsNone(m1.header("Region"))  # case-sensitive
        self.assertEqual(m2.header_values("k"), [b"a", b"b"])
        self.assertEqual(m2.header("empty"), b"")
        self.assertEqual(m3.headers, [])
        with self.assertRaises(sift.InvalidHeader):
            c.publish(t, b"", headers={"bad key": "v"})
        with self.assertRaises(sift.HeadersTooLarge):
            c.publish(t, b"", headers=[("k", "v")] * 65)

    def test_queue_groups_share_and_plain_subscribers_get_all(self):
        pub = self.client()
        t = self.topic()
        members = [self.client().subscribe(t, queue_group="workers")
                   for _ in range(2)]
        plain = self.client().subscribe(t)
        n = 100
        for i in range(n):
            pub.publish(t, b"%d" % i)
        self.assertEqual(len([plain.next(5) for _ in range(n)]), n)
        seen = []
        for m in members:
            while True:
                try:
                    seen.append(int(m.next(0.3).payload))
                except sift.Timeout:
                    break
        self.assertEqual(sorted(seen), list(range(n)))  # each exactly once
        self.assertTrue(all(m.queue_group == "workers" for m in members))

    def test_unsubscribe_stops_deliveries_and_ends_iteration(self):
        c = self.client()
        t = self.topic()
        sub = c.subscribe(t)
        c.publish_confirmed(t, b"before")
        sub.unsubscribe()
        sub.unsubscribe()  # idempotent
        c.publish_confirmed(t, b"after")
        self.assertEqual([m.payload for m in sub], [b"before"])
        with self.assertRaises(sift.SubscriptionClosed):
            sub.next(0.1)
        self.assertEqual(c.stats().subscriptions, 0)

    def test_callbacks_in_order_on_their_thread_and_survive_exceptions(self):
        c = self.client()
        t = self.topic()
        got, threads = [], set()
        done = threading.Event()

        def on_message(m):
            threads.add(threading.current_thread().name)
            if m.payload == b"boom":
                raise RuntimeError("callback failure (expected in the test)")
            got.append(m.payload)
            if m.payload == b"last":
                done.set()
        c.subscribe(t, callback=on_message)
        with self.assertLogs("sift", "ERROR") as logs:
            for p in (b"1", b"boom", b"2", b"last"):
                c.publish(t, p)
            self.assertTrue(done.wait(5))
        self.assertIn("raised", logs.output[0])
        self.assertEqual(got, [b"1", b"2", b"last"])
        self.assertEqual(len(threads), 1)
        self.assertTrue(threads.pop().startswith("sift-cb-"))

    def test_callbacks_may_make_blocking_calls(self):
        c = self.client()
        t = self.topic()
        c.subscribe(t + ".svc", callback=lambda m: m.respond(b"pong"))
        answers = []
        done = threading.Event()

        def on_message(m):
            answers.append(c.request(t + ".svc", b"ping", timeout=5).payload)
            done.set()
        c.subscribe(t, callback=on_message)
        c.publish(t, b"go")
        self.assertTrue(done.wait(10))
        self.assertEqual(answers, [b"pong"])

    def test_local_queue_bound_drops_newest_and_says_where(self):
        c = self.client(queue_max_messages=5)
        t = self.topic()
        sub = c.subscribe(t)
        for i in range(20):
            c.publish_confirmed(t, b"%d" % i)  # OK after its delivery
        self.assertEqual([sub.next(1).payload for _ in range(5)],
                         [b"0", b"1", b"2", b"3", b"4"])
        with self.assertRaises(sift.MessagesDropped) as cm:
            sub.next(1)
        self.assertEqual(cm.exception.count, 15)
        self.assertEqual(sub.dropped, 15)
        c.publish_confirmed(t, b"later")
        self.assertEqual(sub.next(1).payload, b"later")

    def test_concurrent_publishers_keep_their_order(self):
        pub, sub_client = self.client(), self.client()
        t = self.topic()
        sub = sub_client.subscribe(t)
        n, k = 500, 4

        def publish(thread):
            for i in range(n):
                pub.publish(t, b"%d:%d" % (thread, i))
        threads = [threading.Thread(target=publish, args=(j,))
                   for j in range(k)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(30)
        last = {}
        for _ in range(n * k):
            thread, i = map(int, sub.next(10).payload.split(b":"))
            self.assertEqual(i, last.get(thread, -1) + 1)
            last[thread] = i
        self.assertEqual(last, {j: n - 1 for j in range(k)})

    def test_retained_and_delayed_publishes(self):
        c = self.client()
        t = self.topic()
        c.publish_confirmed(t + ".state", b"on", retain=True)
        sub = c.subscribe(t + ".>")
        m = sub.next(5)
        self.assertEqual((m.topic, m.payload, m.retained),
                         (t + ".state", b"on", True))
        start = time.monotonic()
        c.publish_confirmed(t + ".later", b"soon", delay=0.3)
        m = sub.next(5)
        self.assertEqual((m.payload, m.retained), (b"soon", False))
        self.assertGreaterEqual(time.monotonic() - start, 0.25)
        c.publish(t + ".at", b"at", deliver_at=time.time() + 0.1)
        self.assertEqual(sub.next(5).payload, b"at")
        with self.assertRaises(sift.InvalidRequest):
            c.publish(t, b"", delay=1, deliver_at=time.time())
        with self.assertRaises(sift.InvalidRequest):
            c.publish(t, b"", retain=True, delay=1)
        with self.assertRaises(sift.InvalidRequest):
            c.publish(t, b"", delay=c.limits.max_delay_ms / 1000 + 10)


class ErrorsTest(BrokerTestCase):
    siftd_flags = ("--log_level=error", "--max_payload_bytes=1024")

    def raw_confirmed_pub(self, c, topic: bytes, payload: bytes):
        """A confirmed PUB that skips the client's own checks, so the
        broker's answer is what the caller sees."""
        rid = c._session.next_id()
        return c._call(OK, [_wire.pub(rid, topic, b"", True, []), payload],
                       rid, 5, "raw publish")

    def test_confirmed_publish_and_local_errors(self):
        c = self.client()
        c.publish_confirmed(self.topic(), b"ok")  # no subscribers: still OK
        with self.assertRaises(sift.Forbidden):
            c.publish_confirmed("$sift.deadletter.x", b"")
        with self.assertRaises(sift.InvalidTopic):
            c.publish_confirmed("a..b", b"")
        with self.assertRaises(sift.InvalidTopic):
            c.publish("a.*", b"")
        with self.assertRaises(sift.PayloadTooLarge):
            c.publish("a.b", b"x" * 1025)
        with self.assertRaises(sift.InvalidPattern):
            c.subscribe("a.>.b")
        with self.assertRaises(sift.InvalidQueueGroup):
            c.subscribe("a", queue_group="no spaces")
        # Quoted as the broker quotes them: \xHH in uppercase, control
        # characters escaped too, the same text either side refuses.
        with self.assertRaises(sift.InvalidTopic) as local:
            c.publish("caf\u00e9.x\n", b"")
        with self.assertRaises(sift.InvalidTopic) as broker:
            self.raw_confirmed_pub(c, "caf\u00e9.x\n".encode(), b"")
        self.assertEqual(local.exception.message, broker.exception.message)
        self.assertIn('"caf\\xC3\\xA9.x\\x0A"', local.exception.message)
        # A str from the command line or a file name holding bytes that are
        # not UTF-8 (surrogateescape) is those bytes; another lone
        # surrogate cannot be encoded: a SiftError, not UnicodeEncodeError.
        with self.assertRaises(sift.InvalidTopic) as cm:
            c.publish("t.\udce9", b"")
        self.assertIn('"t.\\xE9"', cm.exception.message)
        with self.assertRaises(sift.InvalidRequest) as cm:
            c.publish("t.\ud800", b"")
        self.assertIn("not encodable as UTF-8", cm.exception.message)
        with self.assertRaises(sift.InvalidRequest):
            c.stream_info("s\ud800")

    def test_broker_refusals_carry_their_codes(self):
        c = self.client()
        with self.assertRaises(sift.Forbidden) as cm:
            self.raw_confirmed_pub(c, b"$sift.x", b"")
        self.assertEqual(cm.exception.code, sift.ErrorCode.FORBIDDEN)
        with self.assertRaises(sift.PayloadTooLarge) as cm:
            self.raw_confirmed_pub(c, b"a.b", b"x" * 2000)
        self.assertIn("1024", cm.exception.message)
        with self.assertRaises(sift.InvalidTopic):
            self.raw_confirmed_pub(c, b"a..b", b"")
        other = self.client()
        with self.assertRaises(sift.Forbidden):
            c.subscribe(other.inbox_prefix + ".>")
        with self.assertRaises(sift.InvalidFilter) as cm:
            c.subscribe("a", filter="region ==")
        self.assertIn("position", cm.exception.message)
        with self.assertRaises(sift.InvalidPlugin):
            c.subscribe("a", plugins=[sift.PluginSpec("no_such_plugin")])
        with self.assertRaises(sift.InvalidRequest):
            c.subscribe("a", ack=sift.AckOptions(max_in_flight=0))
        with self.assertRaises(sift.BadFrame):  # locally: over frame 0's bound
            c.subscribe("a", filter="x == '" + "y" * 70000 + "'")
        self.assertEqual(c.stats().subscriptions, 0)

    def test_fire_and_forget_refusal_reaches_the_error_callback(self):
        errors = []
        got = threading.Event()

        def on_error(e):
            errors.append(e)
            got.set()
        c = self.client(error_callback=on_error)
        with c._lock:
            c._session.enqueue([_wire.pub(0, b"$sift.x", b"", False, []), b""])
        c._wake()
        self.assertTrue(got.wait(5))
        self.assertIsInstance(errors[0], sift.Forbidden)

    def test_filter_and_subscription_plugins(self):
        c = self.client()
        t = self.topic()
        eu = c.subscribe(t, filter="region == 'eu'")
        stamped = c.subscribe(t, plugins=[
            sift.PluginSpec("header_set", [("set.tenant", "acme")])])
        c.publish(t, b"us", headers={"region": "us"})
        c.publish(t, b"eu", headers={"region": "eu"})
        self.assertEqual(eu.next(5).payload, b"eu")
        m = stamped.next(5)
        self.assertEqual((m.payload, m.header("tenant")), (b"us", b"acme"))

    def test_requests_and_timeouts(self):
        c = self.client()
        t = self.topic()
        c.subscribe(t, queue_group="svc",
                    callback=lambda m: m.respond(m.payload.upper(),
                                                 headers={"via": "svc"}))
        reply = c.request(t, b"hello", timeout=5)
        self.assertEqual((reply.payload, reply.header("via")),
                         (b"HELLO", b"svc"))
        self.assertTrue(reply.topic.startswith(c.inbox_prefix + "."))
        start = time.monotonic()
        with self.assertRaises(sift.Timeout):
            c.request(self.topic("nobody"), b"?", timeout=0.2)
        self.assertLess(time.monotonic() - start, 2.0)
        with self.assertRaises(sift.SiftError):
            sift.Message("a", b"").respond(b"no reply_to")

    def test_stats(self):
        c = self.client()
        t = self.topic()
        c.subscribe(t)
        c.publish_confirmed(t, b"12345")
        st = c.stats()
        self.assertGreaterEqual(st.messages_in, 1)
        self.assertGreaterEqual(st.bytes_in, 5)
        self.assertGreaterEqual(st.clients, 1)
        self.assertIn("no_subscribers", {d.reason for d in st.drops})
        self.assertIn(t, {row.topic for row in st.topics})
        with self.assertRaises(sift.InvalidConfig):
            c.reload()  # started without a config file


class KeepaliveTest(BrokerTestCase):
    siftd_flags = ("--log_level=warn", "--client_timeout_ms=600")

    def test_pings_keep_an_idle_session(self):
        idle, pub = self.client(), self.client()
        t = self.topic()
        sub = idle.subscribe(t)
        time.sleep(1.5)  # 2.5 times the broker's client timeout
        pub.publish_confirmed(t, b"still here")
        self.assertEqual(sub.next(5).payload, b"still here")
        self.assertEqual(idle.reconnects, 0)


class NoReconnectTest(BrokerTestCase):

    def test_a_lost_session_fails_calls(self):
        c = sift.Client(self.siftd.endpoint, reconnect=False)
        self.addCleanup(c.close, 1.0)
        sub = c.subscribe(self.topic())
        self.siftd.restart()
        self.assertTrue(wait_until(lambda: not c.is_connected, 10))
        with self.assertRaises(sift.NotConnected):
            c.publish("a.b", b"")
        with self.assertRaises(sift.NotConnected):
            sub.next(5)


if __name__ == "__main__":
    import unittest
    unittest.main()
