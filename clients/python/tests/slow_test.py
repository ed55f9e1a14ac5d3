"""Slow-consumer policies of subscriptions (subscribe(..., slow=...),
docs/delivery.md §7): what the SUB carries, and a real siftd applying them
to a subscriber that stops reading.

A subscriber that "stops reading" has to stop at the socket, not only in the
application: the client's I/O thread and ZeroMQ's would otherwise keep
taking messages into the client's own queue. So it runs in a child process
(the script below) that the test stops with SIGSTOP while it publishes, and
continues with SIGCONT. (The broker counts what it has handed to ZeroMQ and
ZeroMQ has not yet written to the kernel, so a burst of 2,000 batched
publishes overruns a 32 KiB bound even for a subscriber that reads; the
stop makes sure this one does not catch up meanwhile.)
"""

import json
import os
import signal
import subprocess
import sys
import time
import unittest

import sift
from sift import _wire
from sift._pb import pb
from sift._session import SubState
from support import AsyncBrokerTestCase, BrokerTestCase

MESSAGES = 2000

# The child: subscribes with the slow policy it is given (argv: endpoint,
# pattern, SlowConsumerOptions as JSON), prints {"ready": true}, then for
# each line of stdin (a number of seconds) reads until that long passes
# without a message and prints what came: each payload up to its ':', and
# the client's counts. "quit" ends it.
_CHILD = r"""
import json, sys
import sift
endpoint, pattern, slow = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
notices = []
def on_error(e):
    if isinstance(e, sift.SlowConsumer):
        notices.append(e.dropped)
client = sift.Client(endpoint, error_callback=on_error)
sub = client.subscribe(pattern, slow=sift.SlowConsumerOptions(**slow))
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    if line.strip() == "quit":
        break
    got = []
    while True:
        try:
            m = sub.next(float(line))
        except sift.Timeout:
            break
        except sift.MessagesDropped:
            continue
        got.append(m.payload.split(b":")[0].decode())
    print(json.dumps({"got": got, "broker_dropped": client.broker_dropped,
                      "notices": sum(notices), "reconnects": client.reconnects,
                      "connected": client.is_connected}), flush=True)
client.close(1.0)
"""


class SlowSubscriber:
    """The child process above, stopped and continued by its pid."""

    def __init__(self, test: unittest.TestCase, endpoint: str, pattern: str,
                 **slow) -> None:
        package_dir = os.path.dirname(os.path.dirname(
            os.path.abspath(sift.__file__)))
        env = dict(os.environ, PYTHONPATH=package_dir)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD, endpoint, pattern,
             json.dumps(slow)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        test.addCleanup(self.close)
        test.assertEqual(json.loads(self.proc.stdout.readline()),
                         {"ready": True})

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def go_on(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def read(self, quiet: float = 1.0) -> dict:
        """What the child received until ``quiet`` seconds without a
        message, with its counts."""
        self.proc.stdin.write(f"{quiet}\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.poll() is not None:
            return
        self.go_on()
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        self.proc.stdout.close()


def publish_all(client: sift.Client, topic: str) -> None:
    """MESSAGES payloads "<i>:" padded to 1 KiB, then a confirmed one on
    another topic, so that all were routed when it returns."""
    for i in range(MESSAGES):
        client.publish(topic, f"{i}:".encode().ljust(1024, b"x"))
    client.publish_confirmed(topic + ".end", b"end:")


def slow_consumer_drops(client: sift.Client) -> int:
    for drop in client.stats().drops:
        if drop.reason == "slow_consumer":
            return drop.count
    return 0


class SlowOptionsTest(unittest.TestCase):
    """What the SUB carries; no broker."""

    def test_sub_carries_the_policy_and_bounds(self):
        for name, number in (("drop-newest", pb.DROP_NEWEST),
                             ("drop-oldest", pb.DROP_OLDEST),
                             ("disconnect", pb.DISCONNECT)):
            h = pb.Header.FromString(_wire.sub(
                1, 5, b"p", b"", b"", (), None,
                slow=sift.SlowConsumerOptions(name, 65536, 100)))
            self.assertEqual(h.sub.slow.policy, number)
            self.assertEqual(h.sub.slow.max_pending_bytes, 65536)
            self.assertEqual(h.sub.slow.max_pending_msgs, 100)
        # Present even with every field defaulted; absent when not asked.
        h = pb.Header.FromString(_wire.sub(
            1, 5, b"p", b"", b"", (), None, slow=sift.SlowConsumerOptions()))
        self.assertTrue(h.sub.HasField("slow"))
        h = pb.Header.FromString(_wire.sub(1, 5, b"p", b"", b"", (), None))
        self.assertFalse(h.sub.HasField("slow"))

    def test_resubscription_carries_it_too(self):
        state = SubState(7, b"prices.>", slow=sift.SlowConsumerOptions(
            "drop-oldest", max_pending_msgs=10))
        for rid in (3, 0):  # subscribe(), then after a reconnect
            h = pb.Header.FromString(state.encode(rid))
            self.assertEqual(h.sub.slow.policy, pb.DROP_OLDEST)
            self.assertEqual(h.sub.slow.max_pending_bytes, 0)
            self.assertEqual(h.sub.slow.max_pending_msgs, 10)

    def test_bad_values(self):
        with self.assertRaises(sift.InvalidRequest):
            sift.SlowConsumerOptions("drop_oldest")
        with self.assertRaises(sift.InvalidRequest):
            sift.SlowConsumerOptions("drop-oldest", max_pending_bytes=-1)
        with self.assertRaises(sift.InvalidRequest):
            sift.SlowConsumerOptions("drop-oldest", max_pending_msgs=1 << 32)


class DropOldestTest(BrokerTestCase):
    """A siftd of its own: the slow_consumer count is this test's alone."""

    def test_stalled_subscriber_gets_the_newest_and_drops_are_counted(self):
        topic = self.topic("load")
        slow = SlowSubscriber(self, self.siftd.endpoint, topic,
                              policy="drop-oldest",
                              max_pending_bytes=32 * 1024,
                              max_pending_msgs=100)
        pub = self.client()
        before = slow_consumer_drops(pub)
        slow.stop()
        try:
            publish_all(pub, topic)
        finally:
            slow.go_on()
        r = slow.read()
        got = [int(n) for n in r["got"]]
        self.assertTrue(got, "the stalled subscriber got nothing")
        self.assertLess(len(got), MESSAGES)
        self.assertEqual(got, sorted(set(got)))  # in order, no repeats
        self.assertEqual(got[0], 0)  # the first went out before it was full
        # The oldest waiting were dropped: the newest came, last.
        self.assertEqual(got[-1], MESSAGES - 1)
        dropped = MESSAGES - len(got)
        self.assertEqual(slow_consumer_drops(pub) - before, dropped)
        self.assertGreater(r["broker_dropped"], 0)  # told
        self.assertLessEqual(r["broker_dropped"], dropped)


class DisconnectTest(BrokerTestCase):

    def test_stalled_subscriber_is_disconnected_then_resubscribes(self):
        topic = self.topic("load")
        slow = SlowSubscriber(self, self.siftd.endpoint, topic + ".>",
                              policy="disconnect",
                              max_pending_bytes=32 * 1024)
        pub = self.client()
        slow.stop()
        try:
            publish_all(pub, topic + ".a")
        finally:
            slow.go_on()
        r = slow.read()
        self.assertLess(len(r["got"]), MESSAGES)
        self.assertGreater(slow_consumer_drops(pub), 0)
        # Its session ended; the client started another and subscribed
        # again, with the same policy.
        deadline = time.monotonic() + 10
        while r["reconnects"] < 1 and time.monotonic() < deadline:
            r = slow.read(0.2)
        self.assertGreaterEqual(r["reconnects"], 1)
        pub.publish_confirmed(topic + ".b", b"after:")
        self.assertEqual(slow.read()["got"], ["after"])


class AsyncSlowTest(AsyncBrokerTestCase):

    async def test_subscribe_with_a_policy_name(self):
        c = await self.client()
        topic = self.topic()
        sub = await c.subscribe(topic, slow="drop-oldest")
        await c.publish_confirmed(topic, b"hi")
        self.assertEqual((await sub.next(5)).payload, b"hi")
        with self.assertRaises(sift.InvalidRequest):
            await c.subscribe(topic, slow="fastest")
        with self.assertRaises(sift.InvalidRequest):
            await c.subscribe(topic, slow=3)
