"""Explicit acks (docs/protocol.md §6.2) through sift.Client against a real
siftd: ack, redelivery after the ack wait, nack with a delay, in_progress,
work handed over when a group member leaves, dead letters."""

import time

import sift
from support import BrokerTestCase, wait_until

FAST = sift.AckOptions(ack_wait=0.3, backoff_initial=0.05,
                       backoff_max=0.05, backoff_jitter=0.0)


class AckTest(BrokerTestCase):

    def deliveries(self, c):
        return c.stats().deliveries

    def test_ack_ends_a_delivery(self):
        c = self.client()
        t = self.topic()
        sub = c.subscribe(t, ack=FAST)
        c.publish(t, b"task")
        m = sub.next(5)
        self.assertEqual((m.attempt, m.payload), (1, b"task"))
        self.assertGreater(m.delivery_id, 0)
        m.ack(timeout=5)  # confirmed: OK from the broker
        with self.assertRaises(sift.Timeout):
            sub.next(0.6)  # past the ack wait: not redelivered
        with self.assertRaises(sift.UnknownDelivery):
            m.ack(timeout=5)  # acknowledged already

    def test_declared_queue_holds_work_until_a_worker_comes(self):
        c = self.client()
        t = self.topic()
        c.declare(t, "pool", sift.AckOptions(ack_wait=10))
        c.declare(t, "pool", sift.AckOptions(ack_wait=10))  # idempotent
        for i in range(3):
            c.publish_confirmed(t, b"job %d" % i)
        self.assertEqual(self.deliveries(c).queued, 3)
        worker = self.client()
        sub = worker.subscribe(t, queue_group="pool",
                               ack=sift.AckOptions(ack_wait=10))
        for i in range(3):
            m = sub.next(5)
            self.assertEqual(m.payload, b"job %d" % i)
            m.ack(timeout=5)
        with self.assertRaises(sift.InvalidQueueGroup):
            c.declare(t, "")

    def test_ack_wait_runs_out_and_redelivers(self):
        c = self.client()
        t = self.topic()
        sub = c.subscribe(t, ack=FAST)
        c.publish(t, b"task")
        first = sub.next(5)
        again = sub.next(5)
        self.assertEqual((again.payload, again.attempt), (b"task", 2))
        self.assertNotEqual(again.delivery_id, first.delivery_id)
        again.ack()  # fire-and-forget
        self.assertTrue(wait_until(
            lambda: self.deliveries(c).in_flight == 0, 5))

    def test_nack_with_delay(self):
        c = self.client()
        t = self.topic()
        sub = c.subscribe(t, ack=sift.AckOptions(ack_wait=10))
        c.publish(t, b"retry me")
        m = sub.next(5)
        start = time.monotonic()
        m.nack(delay=0.3)
        again = sub.next(5)
        self.assertGreaterEqual(time.monotonic() - start, 0.25)
        self.assertEqual(again.attempt, 2)
        again.ack(timeout=5)

    def test_in_progress_holds_off_redelivery(self):
        c = self.client()
        t = self.topic()
        sub = c.subscribe(t, ack=FAST)
        c.publish(t, b"slow task")
        m = sub.next(5)
        for _ in range(4):  # 0.6 s of work, twice the ack wait
            time.sleep(0.15)
            m.in_progress()
        m.ack(timeout=5)
        with self.assertRaises(sift.Timeout):
            sub.next(0.5)
        self.assertGreaterEqual(self.deliveries(c).progress, 4)

    def test_work_goes_to_the_other_member_when_one_leaves(self):
        t = self.topic()
        opts = sift.AckOptions(ack_wait=30, max_in_flight=1)
        quitter = sift.Client(self.siftd.endpoint)
        stayer = self.client()
        q_sub = quitter.subscribe(t, queue_group="g", ack=opts)
        s_sub = stayer.subscribe(t, queue_group="g", ack=opts)
        pub = self.client()
        pub.publish_confirmed(t, b"a")
        pub.publish_confirmed(t, b"b")
        # max_in_flight=1: each member holds one.
        held = q_sub.next(5)
        mine = s_sub.next(5)
        quitter.close()  # without acking: its task goes to the stayer
        mine.ack()
        handed = s_sub.next(5)
        self.assertEqual(handed.payload, held.payload)
        self.assertEqual(handed.attempt, 2)
        handed.ack(timeout=5)

    def test_max_deliver_sends_to_the_dead_letter_topic(self):
        c = self.client()
        t = self.topic()
        dead = c.subscribe("$sift.deadletter." + t)
        sub = c.subscribe(t, ack=sift.AckOptions(
            ack_wait=10, max_deliver=2, backoff_initial=0.01,
            backoff_jitter=0.0))
        c.publish(t, b"poison", headers={"id": "7"})
        for attempt in (1, 2):
            m = sub.next(5)
            self.assertEqual(m.attempt, attempt)
            m.nack()
        d = dead.next(5)
        self.assertEqual((d.payload, d.header("id")), (b"poison", b"7"))
        self.assertEqual(d.header("sift-original-topic"), t.encode())
        self.assertIn(b"nack", d.header("sift-reason"))
        self.assertGreaterEqual(self.deliveries(c).dead_letters, 1)

    def test_plain_messages_are_not_ackable(self):
        c = self.client()
        t = self.topic()
        sub = c.subscribe(t)
        c.publish(t, b"x")
        m = sub.next(5)
        self.assertEqual((m.delivery_id, m.attempt), (0, 0))
        with self.assertRaises(sift.NotAckable):
            m.ack()
        with self.assertRaises(sift.NotAckable):
            c.nack(m)


if __name__ == "__main__":
    import unittest
    unittest.main()
