"""Durable streams (docs/python.md "Streams", docs/delivery.md §3) through
sift.Client and sift.AsyncClient against a real siftd started with
--data_dir: stream admin and its errors, confirmed publishes with their
stream seq and msg_id dedup, fetch (batch, wait, named consumers, explicit
acks and redelivery), stream subscriptions (replay, then live) and durable
consumers across a broker restart."""

import datetime
import os
import shutil
import tempfile
import time
import unittest

import sift
from sift import _wire
from sift._pb import pb
from sift._session import CONFIRM, STREAM, SUB, SubState
from siftd import Siftd, wait_until
from support import AsyncBrokerTestCase, BrokerTestCase
from wire_test import FakeSession

# Redelivery soon after a missed ack, for tests.
FAST = sift.AckOptions(ack_wait=0.3, backoff_initial=0.05, backoff_max=0.05,
                       backoff_jitter=0.0)


def new_data_dir(tag: str) -> str:
    base = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
    return tempfile.mkdtemp(prefix=f"sift-py-{tag}-", dir=base)


class _DataDir:
    """Mixin: the class's siftd gets a data directory of its own."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.data_dir = new_data_dir(cls.__name__)
        cls.siftd_flags = ("--log_level=warn", f"--data_dir={cls.data_dir}")
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        shutil.rmtree(cls.data_dir, ignore_errors=True)


_names = iter(range(1, 1 << 30))


def stream_name(tag: str = "s") -> str:
    return f"{tag}{next(_names)}"


class StreamSessionTest(unittest.TestCase):
    """The session's stream logic with a fake driver (no broker)."""

    def connected(self):
        s = FakeSession()
        s.start("connect", 0.0)
        s.sent()
        s.welcome()
        return s

    @staticmethod
    def deliver(s, sid, seq, payload=b"p"):
        h = pb.Header()
        h.deliver.sid = sid
        h.deliver.topic = b"t.x"
        h.deliver.stream_seq = seq
        h.deliver.timestamp_ms = 1700000000123
        s.on_frames([h.SerializeToString(), payload])

    def test_encodings(self):
        start = sift.StreamStart("orders", "c1", deliver=7)
        h = pb.Header.FromString(_wire.fetch(5, 9, start, 10, 250, b"t.>",
                                             sift.AckOptions()))
        f = h.fetch
        self.assertEqual((h.request_id, f.sid, f.batch, f.max_wait_ms,
                          f.pattern), (5, 9, 10, 250, b"t.>"))
        self.assertEqual((f.start.stream, f.start.consumer, f.start.deliver,
                          f.start.start_seq), (b"orders", b"c1",
                                               pb.DELIVER_FROM_SEQ, 7))
        self.assertTrue(f.HasField("ack"))
        when = datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc)
        h = pb.Header.FromString(_wire.sub(
            1, 2, b">", b"", b"", (), None, sift.StreamStart("s", "", when)))
        self.assertEqual((h.sub.stream.deliver, h.sub.stream.start_time_ms),
                         (pb.DELIVER_FROM_TIME, int(when.timestamp()) * 1000))
        h = pb.Header.FromString(_wire.sub(1, 2, b">", b"", b"", (), None,
                                           sift.StreamStart("s", "",
                                                            "new")))
        self.assertEqual(h.sub.stream.deliver, pb.DELIVER_NEW)
        h = pb.Header.FromString(_wire.stream_request(
            3, _wire.STREAM_ADD, b"n", [b"a.>"], max_age_ms=5, fsync="10ms"))
        self.assertEqual((h.stream.op, h.stream.config.name,
                          list(h.stream.config.subjects),
                          h.stream.config.max_age_ms, h.stream.config.fsync),
                         (pb.STREAM_ADD, b"n", [b"a.>"], 5, "10ms"))
        for bad in ("first", -1, True, 1.5):
            with self.assertRaises(sift.InvalidRequest, msg=bad):
                sift.StreamStart("s", deliver=bad)

    def test_fetch_collects_until_its_ok(self):
        s = self.connected()
        sid, rid = s.next_id(), s.next_id()
        s.fetch([_wire.fetch(rid, sid, sift.StreamStart("s"), 5, 0)], "f",
                rid, sid)
        [sent] = s.sent()
        self.assertEqual(sent.fetch.sid, sid)
        self.deliver(s, sid, 1, b"a")
        self.deliver(s, sid, 2, b"b")
        self.deliver(s, sid + 1000, 3)  # someone else's: ignored
        h = pb.Header(request_id=rid)
        h.ok.delivered = 2
        s.on_frames([h.SerializeToString()])
        kind, msgs = s.results["f"]
        self.assertEqual(kind, "ok")
        self.assertEqual([(m.payload, m.stream_seq, m.timestamp_ms)
                          for m in msgs],
                         [(b"a", 1, 1700000000123), (b"b", 2,
                                                     1700000000123)])
        self.assertEqual(s.fetches, {})
        self.assertEqual(s.delivered, [])

    def test_fetch_forgotten_on_timeout_error_and_lost_connection(self):
        s = self.connected()
        for what in ("timeout", "error", "reconnect"):
            sid, rid = s.next_id(), s.next_id()
            s.fetch([_wire.fetch(rid, sid, sift.StreamStart("s"), 5, 0)],
                    what, rid, sid)
            s.sent()
            self.deliver(s, sid, 1)
            if what == "timeout":
                s.forget(rid)
                self.assertNotIn(what, s.results)
            elif what == "error":
                s.error(rid, sift.ErrorCode.UNKNOWN_STREAM)
                self.assertIsInstance(s.results[what][1],
                                      sift.UnknownStream)
            else:
                s.on_disconnected()
                s.on_connected()
                [hello] = s.sent()
                s.welcome(hello.request_id, "c2-x")
                self.assertIsInstance(s.results[what][1], sift.NotConnected)
            self.assertEqual(s.fetches, {})

    def test_stream_subscriptions_resume_after_a_reconnect(self):
        s = self.connected()
        eph = SubState(s.next_id(), b">", sink=object(),
                       stream=sift.StreamStart("s", deliver="all"))
        dur = SubState(s.next_id(), b">", sink=object(),
                       stream=sift.StreamStart("s", "d", deliver="all"))
        for sub in (eph, dur):
            s.add_sub(sub)
            rid = s.next_id()
            s.request(SUB, [sub.encode(rid)], None, rid, sid=sub.sid)
            s.sent()
            s.ok(rid)
            self.deliver(s, sub.sid, 41)
            self.deliver(s, sub.sid, 42)
        self.assertEqual(len(s.delivered), 4)
        self.assertEqual(s.delivered[0].timestamp.year, 2023)
        s.on_disconnected()
        s.on_connected()
        [hello] = s.sent()
        s.welcome(hello.request_id, "c2-x")
        subs = {h.sub.sid: h.sub for h in s.sent()}
        # Ephemeral: after the last record it received; durable: as given
        # (the broker keeps its position).
        self.assertEqual((subs[eph.sid].stream.deliver,
                          subs[eph.sid].stream.start_seq),
                         (pb.DELIVER_FROM_SEQ, 43))
        self.assertEqual((subs[dur.sid].stream.deliver,
                          subs[dur.sid].stream.consumer),
                         (pb.DELIVER_ALL, b"d"))

    def test_confirm_and_stream_replies(self):
        s = self.connected()
        rid = s.next_id()
        s.request(CONFIRM, [_wire.pub(rid, b"a.b", b"", True, []), b""],
                  "pub", rid)
        s.sent()
        h = pb.Header(request_id=rid)
        h.ok.stream_seq = 9
        h.ok.duplicate = True
        s.on_frames([h.SerializeToString()])
        ok = s.results["pub"][1]
        self.assertEqual((ok.stream_seq, ok.duplicate), (9, True))
        rid = s.next_id()
        s.request(STREAM, [_wire.stream_request(rid, _wire.STREAM_LIST)],
                  "list", rid)
        s.sent()
        h = pb.Header(request_id=rid)
        info = h.stream_reply.streams.add()
        info.config.name = b"s"
        info.config.subjects.append(b"a.>")
        info.config.dedup_window_ms = 120000
        info.last_seq = 3
        info.consumers.add(name=b"c", ack_floor=2, attached=True, waiting=1)
        s.on_frames([h.SerializeToString()])
        [got] = s.results["list"][1]
        si = sift.StreamInfo.from_wire(got)
        self.assertEqual((si.name, si.config.subjects, si.config.max_age,
                          si.config.dedup_window, si.config.fsync,
                          si.last_seq), ("s", ("a.>",), None, 120.0,
                                         "always", 3))
        self.assertEqual(si.consumer("c"),
                         sift.ConsumerInfo("c", 2, 0, 0, True, waiting=1))


class StreamsTest(_DataDir, BrokerTestCase):

    def stream(self, c, suffix="x", **settings):
        """A new stream capturing a new topic prefix: (name, prefix)."""
        name = stream_name()
        prefix = self.topic(suffix)
        c.add_stream(name, prefix + ".>", **settings)
        return name, prefix

    # ---- Admin ----

    def test_names_past_the_frame_bound_and_unknown_plugins_say_so(self):
        # Past frame 0's bound the broker answers BAD_FRAME with request id
        # 0, which no request can be matched to: the client refuses such a
        # request at once instead of waiting out its timeout.
        c = self.client()
        huge = "c" * 100000
        for call in (lambda: c.stream_info(huge, timeout=20),
                     lambda: c.delete_stream(huge, timeout=20),
                     lambda: c.fetch(huge, 1, timeout=20)):
            start = time.monotonic()
            with self.assertRaisesRegex(sift.BadFrame,
                                        "over the broker's bound"):
                call()
            self.assertLess(time.monotonic() - start, 3)
        # An unknown plugin's name comes back in part, not 60 KB of it.
        with self.assertRaises(sift.SiftError) as cm:
            c.subscribe("q.>", plugins=[sift.PluginSpec("p" * 60000)])
        self.assertIn("(60000 bytes)", str(cm.exception))
        self.assertLess(len(str(cm.exception)), 800)

    def test_admin_round_trip(self):
        c = self.client()
        name = stream_name("orders")
        streams_before = c.stats().streams
        info = c.add_stream(name, ["o1.>", "o2.*"], max_age=3600,
                            max_msgs=1000, fsync="10ms", dedup_window=30)
        self.assertIsInstance(info, sift.StreamInfo)
        self.assertEqual(info.name, name)
        cfg = info.config
        self.assertEqual(cfg.subjects, ("o1.>", "o2.*"))
        self.assertEqual((cfg.max_age, cfg.max_msgs, cfg.max_bytes),
                         (3600.0, 1000, None))
        self.assertEqual((cfg.fsync, cfg.dedup_window), ("10ms", 30.0))
        self.assertEqual((info.first_seq, info.last_seq, info.messages),
                         (1, 0, 0))
        self.assertFalse(info.from_config)
        self.assertEqual(info.consumers, ())
        # The same settings again: OK, no change.
        again = c.add_stream(name, ["o1.>", "o2.*"], max_age=3600,
                             max_msgs=1000, fsync="10ms", dedup_window=30)
        self.assertEqual(again, info)
        self.assertEqual(c.stats().streams, streams_before + 1)

        c.publish_confirmed("o1.a", b"one")
        c.fetch(name, 1, consumer="reader")
        got = c.stream_info(name)
        self.assertEqual((got.last_seq, got.messages), (1, 1))
        self.assertGreater(got.bytes, 0)
        reader = got.consumer("reader")
        self.assertEqual((reader.ack_floor, reader.delivered_seq,
                          reader.in_flight, reader.attached), (1, 1, 0, False))
        self.assertIn(name, [s.name for s in c.streams()])

        c.delete_consumer(name, "reader")
        self.assertIsNone(c.stream_info(name).consumer("reader"))
        c.delete_stream(name)
        self.assertNotIn(name, [s.name for s in c.streams()])
        self.assertEqual(c.stats().streams, streams_before)
        with self.assertRaises(sift.UnknownStream):
            c.stream_info(name)

    def test_deleting_a_stream_ends_its_subscriptions(self):
        c = self.client()
        name, prefix = self.stream(c)
        c.publish_confirmed(prefix + ".a", b"one")
        sub = c.subscribe(prefix + ".>", stream=name, deliver="all")
        self.assertEqual(sub.next(5).payload, b"one")
        c.delete_stream(name)
        # The broker's notice ends it: the iterator raises, it does not wait.
        start = time.monotonic()
        with self.assertRaises(sift.UnknownStream):
            sub.next(5)
        self.assertLess(time.monotonic() - start, 4)

    def test_admin_errors(self):
        c = self.client()
        name, prefix = self.stream(c)
        with self.assertRaises(sift.InvalidStream) as cm:
            c.add_stream(name, prefix + ".eu.>")  # other settings
        self.assertEqual(cm.exception.code, sift.ErrorCode.INVALID_STREAM)
        for bad in (("bad name", "x.>"), ("nosubjects", []),
                    ("badpattern", "a..b"), ("reserved", "$sift.x")):
            with self.assertRaises(sift.InvalidStream, msg=bad):
                c.add_stream(*bad)
        with self.assertRaises(sift.InvalidStream):
            c.add_stream(stream_name(), "y.>", fsync="sometimes")
        with self.assertRaises(sift.UnknownStream) as cm:
            c.stream_info("missing")
        self.assertEqual(cm.exception.code, sift.ErrorCode.UNKNOWN_STREAM)
        self.assertIsInstance(cm.exception, LookupError)
        with self.assertRaises(sift.UnknownStream):
            c.delete_stream("missing")
        with self.assertRaises(sift.UnknownStream):
            c.delete_consumer(name, "nobody")
        with self.assertRaises(sift.UnknownStream):
            c.fetch("missing")
        with self.assertRaises(sift.UnknownStream):
            c.subscribe(">", stream="missing")
        # Found locally, before sending.
        with self.assertRaises(sift.InvalidRequest):
            c.add_stream(stream_name(), "z.>", max_age=-1)
        # 0 would be sent as the broker's default, not as "no dedup".
        for zero in (0, 0.0):
            with self.assertRaises(sift.InvalidRequest, msg=zero) as cm:
                c.add_stream(stream_name(), "z.>", dedup_window=zero)
            self.assertIn("cannot turn dedup off", str(cm.exception))
        for batch in (0, 10001, True):
            with self.assertRaises(sift.InvalidRequest, msg=batch):
                c.fetch(name, batch)
        with self.assertRaises(sift.InvalidRequest):
            c.fetch(name, deliver="oldest")
        with self.assertRaises(sift.InvalidRequest):
            c.fetch(sift.StreamStart(name), consumer="x")
        # An empty name is named as the argument given, not as a
        # StreamStart the caller never made.
        for call in (lambda: c.fetch(""), lambda: c.subscribe(">", stream="")):
            with self.assertRaises(sift.InvalidRequest) as cm:
                call()
            self.assertIn('stream="": a stream name is 1 to 64',
                          str(cm.exception))
            self.assertNotIn("StreamStart", str(cm.exception))
        with self.assertRaises(sift.InvalidPattern):
            c.fetch(name, pattern="a..b")
        with self.assertRaises(sift.InvalidRequest):
            c.subscribe(">", stream=name, queue_group="g")
        with self.assertRaises(sift.InvalidRequest):
            c.subscribe(">", consumer="c")  # no stream
        # The broker: acks need a named consumer.
        with self.assertRaises(sift.InvalidRequest):
            c.fetch(name, ack=True)
        # The client is fine after all that.
        self.assertEqual(c.stream_info(name).name, name)

    def test_streams_are_off_without_a_data_dir(self):
        with Siftd("--log_level=warn") as plain:
            c = sift.Client(plain.endpoint, connect_timeout=5)
            self.addCleanup(c.close, 1.0)
            with self.assertRaises(sift.InvalidStream):
                c.add_stream("s", "x.>")
            with self.assertRaises(sift.InvalidStream):
                c.streams()
            with self.assertRaises(sift.InvalidStream):
                c.fetch("s")
            with self.assertRaises(sift.InvalidStream):
                c.subscribe(">", stream="s")
            self.assertEqual(c.publish_confirmed("x.y", b"routed"),
                             sift.PublishAck(0, False))

    # ---- Publishing ----

    def test_confirmed_publish_seq_and_msg_id_dedup(self):
        c = self.client()
        name, prefix = self.stream(c)
        t = prefix + ".in"
        a = c.publish_confirmed(t, b"1", msg_id="id-1")
        b = c.publish_confirmed(t, b"2", headers={"k": "v"}, msg_id="id-2")
        dup = c.publish_confirmed(t, b"1 again", msg_id="id-1")
        other = c.publish_confirmed(self.topic(), b"not stored")
        self.assertEqual(a, sift.PublishAck(stream_seq=1, duplicate=False))
        self.assertEqual((b.stream_seq, b.duplicate), (2, False))
        self.assertEqual((dup.stream_seq, dup.duplicate), (1, True))
        self.assertEqual((other.stream_seq, other.duplicate), (0, False))
        # Fire-and-forget publishes are deduplicated too.
        c.publish(t, b"2 again", msg_id="id-2")
        c.publish(t, b"3", headers=[("k", "a"), ("k", "b")], msg_id="id-3")
        # Consumers see durable records only: wait for the fsync too.
        self.assertTrue(wait_until(
            lambda: c.stream_info(name).durable_seq == 3, 5))
        info = c.stream_info(name)
        self.assertEqual(info.appended, 3)  # duplicates are not appended
        self.assertGreaterEqual(info.fsyncs, 1)
        msgs = c.fetch(name, 10)
        self.assertEqual([m.payload for m in msgs], [b"1", b"2", b"3"])
        self.assertEqual([m.stream_seq for m in msgs], [1, 2, 3])
        self.assertEqual(msgs[0].headers, [(sift.MSG_ID_HEADER, b"id-1")])
        self.assertEqual(msgs[1].headers, [("k", b"v"), ("sift-msg-id",
                                                         b"id-2")])
        self.assertEqual(msgs[2].header_values("k"), [b"a", b"b"])
        now = time.time() * 1000
        for m in msgs:
            self.assertLess(abs(m.timestamp_ms - now), 60000)
            self.assertEqual(m.timestamp.timestamp() * 1000, m.timestamp_ms)
            self.assertEqual(m.timestamp.tzinfo, datetime.timezone.utc)
            self.assertEqual((m.delivery_id, m.attempt), (0, 0))
        with self.assertRaises(sift.InvalidRequest):
            c.publish(t, b"", msg_id="")

    def test_dedup_max_ids_caps_the_ids_remembered(self):
        c = self.client()
        name, prefix = self.stream(c, fsync="never", dedup_max_ids=20)
        info = c.stream_info(name)
        self.assertEqual(info.config.dedup_max_ids, 20)
        self.assertEqual(info.dedup_ids_forgotten_early, 0)
        t = prefix + ".in"
        for i in range(25):
            c.publish_confirmed(t, b"m", msg_id=f"f-{i}")
        # f-0 was forgotten inside the window: stored again, and counted.
        again = c.publish_confirmed(t, b"m", msg_id="f-0")
        self.assertEqual((again.stream_seq, again.duplicate), (26, False))
        self.assertTrue(c.publish_confirmed(t, b"m", msg_id="f-24").duplicate)
        info = c.stream_info(name)
        self.assertEqual((info.messages, info.dedup_ids_forgotten_early),
                         (26, 6))
        # Compared on re-add; the default is 100,000; 0 is refused locally.
        with self.assertRaises(sift.InvalidStream):
            c.add_stream(name, prefix + ".>", fsync="never",
                         dedup_max_ids=21)
        other, _ = self.stream(c)
        self.assertEqual(c.stream_info(other).config.dedup_max_ids, 100000)
        for bad in (0, 100_000_001, -1):
            with self.assertRaises(sift.InvalidRequest):
                c.add_stream(stream_name(), self.topic() + ".>",
                             dedup_max_ids=bad)

    # ---- Fetch ----

    def test_fetch_batch_wait_and_named_consumer_position(self):
        c, p = self.client(), self.client()
        name, prefix = self.stream(c)
        # Nothing there: the answer comes after the wait, empty. The
        # timeout counts beyond the wait.
        start = time.monotonic()
        self.assertEqual(c.fetch(name, 5, deliver="new", wait=0.4,
                                 timeout=0.2), [])
        self.assertGreaterEqual(time.monotonic() - start, 0.38)
        # A publish during the wait ends it early.
        import threading
        later = threading.Timer(
            0.2, lambda: p.publish_confirmed(prefix + ".a", b"late"))
        later.start()
        start = time.monotonic()
        got = c.fetch(name, 1, deliver="new", wait=5)
        later.join()
        self.assertEqual([m.payload for m in got], [b"late"])
        self.assertLess(time.monotonic() - start, 4)
        for i in range(5):
            p.publish_confirmed(prefix + (".b" if i % 2 else ".c"), b"%d" % i)
        # Batches, and a named consumer's position across fetches.
        one = c.fetch(name, 3, consumer="poller")
        two = c.fetch(name, 10, consumer="poller")
        self.assertEqual([m.payload for m in one], [b"late", b"0", b"1"])
        self.assertEqual([m.stream_seq for m in two], [4, 5, 6])
        self.assertEqual(c.fetch(name, 10, consumer="poller"), [])
        self.assertEqual(c.stream_info(name).consumer("poller").ack_floor, 6)
        # Unnamed fetches keep no state; where they start.
        self.assertEqual(len(c.fetch(name, 100)), 6)
        self.assertEqual([m.stream_seq for m in c.fetch(name, 2, deliver=5)],
                         [5, 6])
        future = datetime.datetime.now() + datetime.timedelta(hours=1)
        self.assertEqual(c.fetch(name, 10, deliver=future), [])
        past = datetime.datetime.now(datetime.timezone.utc) - \
            datetime.timedelta(hours=1)
        self.assertEqual(len(c.fetch(name, 10, deliver=past)), 6)
        # Only matching topics.
        odd = c.fetch(name, 10, pattern=prefix + ".b")
        self.assertEqual([m.payload for m in odd], [b"1", b"3"])
        # A StreamStart says it all.
        ss = sift.StreamStart(name, deliver=6)
        self.assertEqual([m.payload for m in c.fetch(ss, 10)], [b"4"])

    def test_fetch_with_explicit_acks_and_redelivery(self):
        c = self.client()
        name, prefix = self.stream(c)
        for i in range(3):
            c.publish_confirmed(prefix + ".job", b"job %d" % i)
        [first] = c.fetch(name, 1, consumer="w", ack=FAST)
        self.assertEqual((first.payload, first.attempt), (b"job 0", 1))
        self.assertTrue(first.delivery_id & (1 << 62))  # a stream delivery
        # Not acked: after the ack wait (and backoff) a later fetch gets it
        # again, before the records after it.
        time.sleep(0.5)
        [again] = c.fetch(name, 1, consumer="w", ack=FAST, wait=2)
        self.assertEqual((again.stream_seq, again.attempt), (1, 2))
        self.assertNotEqual(again.delivery_id, first.delivery_id)
        with self.assertRaises(sift.UnknownDelivery):
            first.ack(timeout=5)  # its ack wait ran out
        again.ack(timeout=5)  # answered once the position is on disk
        rest = c.fetch(name, 10, consumer="w", ack=FAST)
        self.assertEqual([m.stream_seq for m in rest], [2, 3])
        info = c.stream_info(name).consumer("w")
        self.assertEqual((info.ack_floor, info.in_flight), (1, 2))
        for m in rest:
            m.ack(timeout=5)
        info = c.stream_info(name).consumer("w")
        self.assertEqual((info.ack_floor, info.in_flight), (3, 0))
        # nack: handed out again at once on the next fetch.
        c.publish_confirmed(prefix + ".job", b"job 3")
        [m] = c.fetch(name, 1, consumer="w", ack=FAST)
        m.nack(timeout=5)
        [m2] = c.fetch(name, 1, consumer="w", ack=FAST, wait=2)
        self.assertEqual((m2.stream_seq, m2.attempt), (4, 2))
        m2.ack()

    def test_fetches_run_concurrently(self):
        import concurrent.futures
        c, p = self.client(), self.client()
        name, prefix = self.stream(c)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            futs = [pool.submit(c.fetch, name, 1, deliver="new", wait=3)
                    for _ in range(4)]
            time.sleep(0.3)
            p.publish_confirmed(prefix + ".x", b"for all")
            results = [f.result(10) for f in futs]
        self.assertEqual([[m.payload for m in r] for r in results],
                         [[b"for all"]] * 4)

    # ---- Stream subscriptions ----

    def test_subscribe_replays_then_follows(self):
        c = self.client()
        name, prefix = self.stream(c)
        for i in range(1, 6):
            c.publish_confirmed(prefix + ".e", b"%d" % i)
        with c.subscribe(">", stream=name) as all_sub:
            self.assertEqual(all_sub.stream, sift.StreamStart(name))
            got = [all_sub.next(5) for _ in range(5)]
            self.assertEqual([m.stream_seq for m in got], [1, 2, 3, 4, 5])
            self.assertEqual([m.payload for m in got],
                             [b"1", b"2", b"3", b"4", b"5"])
            # Then live, as records become durable.
            c.publish(prefix + ".e", b"6")
            m = all_sub.next(5)
            self.assertEqual((m.stream_seq, m.payload), (6, b"6"))
            with self.assertRaises(sift.Timeout):
                all_sub.next(0.2)
        from_seq = c.subscribe(prefix + ".e",
                               stream=sift.StreamStart(name, deliver=4))
        self.assertEqual([from_seq.next(5).stream_seq for _ in range(3)],
                         [4, 5, 6])
        new = c.subscribe(">", stream=name, deliver="new")
        with self.assertRaises(sift.Timeout):
            new.next(0.2)
        c.publish(prefix + ".e", b"7")
        self.assertEqual(new.next(5).stream_seq, 7)
        # Explicit acks on a stream subscription: a callback acks.
        acked = []
        c.subscribe(">", stream=name, consumer="cb", deliver=6, ack=FAST,
                    callback=lambda m: (m.ack(timeout=5),
                                        acked.append(m.stream_seq)))
        self.assertTrue(wait_until(lambda: len(acked) == 2, 5))
        self.assertEqual(acked, [6, 7])
        self.assertTrue(wait_until(
            lambda: c.stream_info(name).consumer("cb").ack_floor == 7, 5))
        # One subscription per durable consumer.
        with self.assertRaises(sift.InvalidRequest):
            self.client().subscribe(">", stream=name, consumer="cb")


class StreamRestartTest(unittest.TestCase):
    """Each test runs a siftd of its own, killed and started again."""

    def start_siftd(self) -> Siftd:
        data_dir = new_data_dir("restart")
        self.addCleanup(shutil.rmtree, data_dir, True)
        s = Siftd("--log_level=warn", f"--data_dir={data_dir}").start()
        self.addCleanup(s.stop)
        return s

    def test_durable_consumer_resumes_after_siftd_restart(self):
        siftd = self.start_siftd()
        c = sift.Client(siftd.endpoint, connect_timeout=5)
        self.addCleanup(c.close, 1.0)
        c.add_stream("ev", "ev.>")
        for i in range(1, 7):
            c.publish_confirmed("ev.x", b"m%d" % i)
        sub = c.subscribe(">", stream="ev", consumer="worker",
                          ack=sift.AckOptions(ack_wait=30))
        live = c.subscribe(">", stream="ev")  # ephemeral, no acks
        got = [sub.next(5) for _ in range(6)]
        self.assertEqual([m.stream_seq for m in got], [1, 2, 3, 4, 5, 6])
        self.assertEqual([live.next(5).stream_seq for _ in range(6)],
                         [1, 2, 3, 4, 5, 6])
        for i in (0, 1, 2, 4):  # acks 1..3 and 5; the answers: on disk
            got[i].ack(timeout=5)

        siftd.kill()
        siftd.start()
        self.assertTrue(wait_until(lambda: c.reconnects >= 1 and
                                   c.is_connected, 15))
        # The durable consumer resumes after its acknowledged position:
        # 4 and 6 again, nothing acknowledged.
        again = [sub.next(10) for _ in range(2)]
        self.assertEqual([m.stream_seq for m in again], [4, 6])
        self.assertEqual([m.payload for m in again], [b"m4", b"m6"])
        for m in again:
            m.ack(timeout=5)
        with self.assertRaises(sift.Timeout):
            sub.next(0.3)
        info = c.stream_info("ev")
        self.assertEqual((info.messages, info.consumer("worker").ack_floor),
                         (6, 6))
        # The ephemeral subscription goes on after what it had: no replay.
        c.publish_confirmed("ev.x", b"m7")
        self.assertEqual(live.next(5).stream_seq, 7)
        self.assertEqual(sub.next(5).stream_seq, 7)
        with self.assertRaises(sift.Timeout):
            live.next(0.3)

    def test_fetch_consumer_position_survives_a_restart(self):
        siftd = self.start_siftd()
        c = sift.Client(siftd.endpoint, connect_timeout=5)
        self.addCleanup(c.close, 1.0)
        c.add_stream("jobs", "jobs.*")
        for i in range(4):
            c.publish_confirmed("jobs.a", b"%d" % i, msg_id=f"j{i}")
        [m0, m1] = c.fetch("jobs", 2, consumer="p",
                           ack=sift.AckOptions(ack_wait=30))
        m0.ack(timeout=5)
        siftd.kill()
        siftd.start()
        self.assertTrue(wait_until(lambda: c.is_connected, 15))
        # Made through the protocol, the stream outlives the restart, and
        # so does the dedup window.
        dup = c.publish_confirmed("jobs.a", b"again", msg_id="j3")
        self.assertEqual((dup.stream_seq, dup.duplicate), (4, True))
        got = c.fetch("jobs", 10, consumer="p",
                      ack=sift.AckOptions(ack_wait=30))
        self.assertEqual([m.stream_seq for m in got], [2, 3, 4])


class AsyncStreamsTest(_DataDir, AsyncBrokerTestCase):

    async def test_admin_publish_fetch_and_replay(self):
        c = await self.client()
        name = stream_name("a")
        prefix = self.topic()
        info = await c.add_stream(name, prefix + ".>", fsync="never")
        self.assertEqual((info.name, info.config.fsync), (name, "never"))
        self.assertIn(name, [s.name for s in await c.streams()])
        acks = [await c.publish_confirmed(prefix + ".x", b"%d" % i,
                                          msg_id=f"m{i}") for i in range(4)]
        self.assertEqual([a.stream_seq for a in acks], [1, 2, 3, 4])
        dup = await c.publish_confirmed(prefix + ".x", b"", msg_id="m0")
        self.assertEqual(dup, sift.PublishAck(1, True))

        got = await c.fetch(name, 3, consumer="f", ack=FAST)
        self.assertIsInstance(got[0], sift.AsyncMessage)
        self.assertEqual([m.stream_seq for m in got], [1, 2, 3])
        for m in got:
            await m.ack(timeout=5)
        self.assertEqual((await c.stream_info(name)).consumer("f").ack_floor,
                         3)
        start = time.monotonic()
        self.assertEqual(await c.fetch(name, 1, deliver="new", wait=0.3), [])
        self.assertGreaterEqual(time.monotonic() - start, 0.28)

        sub = await c.subscribe(">", stream=name, deliver=2)
        self.assertEqual([(await sub.next(5)).stream_seq for _ in range(3)],
                         [2, 3, 4])
        await c.publish(prefix + ".x", b"live")
        m = await sub.next(5)
        self.assertEqual((m.stream_seq, m.payload), (5, b"live"))
        self.assertIsNotNone(m.timestamp)
        await sub.unsubscribe()

        all_sub = await c.subscribe(">", stream=sift.StreamStart(name))
        seqs = []
        async for m in all_sub:
            seqs.append(m.stream_seq)
            if len(seqs) == 5:
                break
        self.assertEqual(seqs, [1, 2, 3, 4, 5])

        await c.delete_consumer(name, "f")
        await c.delete_stream(name)
        with self.assertRaises(sift.UnknownStream):
            await c.stream_info(name)
        with self.assertRaises(sift.UnknownStream):
            await c.fetch(name)
        with self.assertRaises(sift.InvalidRequest):
            await c.fetch(name, 0)
