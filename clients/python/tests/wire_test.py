"""Unit tests without a broker: encodings against docs/protocol.md §13, local
validation against §5/§8.1, error codes against proto/sift.proto, the
bounded queues, and the session logic (reconnect, resend) with a fake
driver."""

import unittest

import sift
from sift import _validate, _wire
from sift._pb import pb
from sift._queue import SyncQueue
from sift._session import OK, STATS, SUB, Session, SubState
from sift.errors import ErrorCode, error_class, error_for_code


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text.replace("\n", " "))


class EncodingTest(unittest.TestCase):
    """Frames byte for byte as the worked examples of protocol.md §13."""

    def test_hello(self):
        self.assertEqual(_wire.hello(1, b"", False), hexbytes("08 01 12 02 08 01"))
        self.assertEqual(_wire.hello(1, b"demo", False),
                         hexbytes("08 01 12 08 08 01 12 04 64 65 6d 6f"))

    def test_pub(self):
        self.assertEqual(_wire.pub(0, b"demo.x", b"", False, []),
                         hexbytes("22 08 0a 06 64 65 6d 6f 2e 78"))
        self.assertEqual(_wire.pub(2, b"demo.x", b"", True, []),
                         hexbytes("08 02 22 0a 0a 06 64 65 6d 6f 2e 78 18 01"))
        self.assertEqual(
            _wire.pub(8, b"svc.time", b"_INBOX.c17-4f0k2m9qsd.1", False, []),
            hexbytes("08 08 22 23 0a 08 73 76 63 2e 74 69 6d 65 12 17 "
                     "5f 49 4e 42 4f 58 2e 63 31 37 2d 34 66 30 6b 32 "
                     "6d 39 71 73 64 2e 31"))

    def test_pub_retained_and_delayed(self):
        h = pb.Header.FromString(_wire.pub(0, b"a", b"", False, [], True))
        self.assertTrue(h.pub.retain)
        h = pb.Header.FromString(_wire.pub(0, b"a", b"", False, [], False, 5))
        self.assertEqual(h.pub.delay_ms, 5)

    def test_pub_with_headers(self):
        self.assertEqual(
            _wire.pub(0, b"demo.x", b"", False,
                      [(b"region", b"eu"), (b"priority", b"5")]),
            hexbytes("22 25 0a 06 64 65 6d 6f 2e 78 "
                     "22 0c 0a 06 72 65 67 69 6f 6e 12 02 65 75 "
                     "22 0d 0a 08 70 72 69 6f 72 69 74 79 12 01 35"))

    def test_other_commands(self):
        self.assertEqual(_wire.sub(3, 1, b"demo.>", b"", b"", (), None),
                         hexbytes("08 03 2a 0a 08 01 12 06 64 65 6d 6f 2e 3e"))
        self.assertEqual(_wire.unsub(7, 1), hexbytes("08 07 32 02 08 01"))
        self.assertEqual(_wire.ping(4), hexbytes("08 04 42 00"))
        self.assertEqual(_wire.pong(4), hexbytes("08 04 4a 00"))
        self.assertEqual(_wire.stats(6), hexbytes("08 06 62 00"))
        self.assertEqual(_wire.bye(), hexbytes("72 00"))
        self.assertEqual(_wire.batch_header(2), hexbytes("7a 02 08 02"))

    def test_sub_with_default_ack_policy_is_present(self):
        h = pb.Header.FromString(
            _wire.sub(1, 5, b"w", b"g", b"", (), sift.AckOptions()))
        self.assertTrue(h.sub.HasField("ack"))
        self.assertFalse(h.sub.ack.HasField("ack_wait_ms"))
        h = pb.Header.FromString(_wire.sub(
            1, 5, b"w", b"", b"a == 'b'",
            [sift.PluginSpec("p", {"k": "v"})],
            sift.AckOptions(ack_wait=1.5, max_deliver=0, backoff_jitter=0.0)))
        self.assertEqual(h.sub.ack.ack_wait_ms, 1500)
        self.assertTrue(h.sub.ack.HasField("max_deliver"))
        self.assertTrue(h.sub.ack.HasField("backoff_jitter"))
        self.assertEqual(h.sub.filter, b"a == 'b'")
        self.assertEqual(h.sub.plugins[0].settings[0].key, b"k")

    def test_batch_of_two_deliveries(self):
        body = hexbytes("0c 3a 0a 08 01 12 06 64 65 6d 6f 2e 78 02 68 69 "
                        "0c 3a 0a 08 02 12 06 64 65 6d 6f 2e 79 02 79 6f")
        entries = list(_wire.iter_batch(body))
        self.assertEqual([p for _, p in entries], [b"hi", b"yo"])
        h = pb.Header.FromString(entries[1][0])
        self.assertEqual((h.deliver.sid, h.deliver.topic), (2, b"demo.y"))
        # The same entries, encoded by the client's own writer.
        self.assertEqual(b"".join(_wire.batch_entry(h, p) for h, p in entries),
                         body)
        with self.assertRaises(sift.BadFrame):
            list(_wire.iter_batch(body[:-1]))

    def test_varint(self):
        for n in (0, 1, 127, 128, 300, 1 << 20, (1 << 64) - 1):
            v = _wire.varint(n)
            self.assertEqual(_wire._read_varint(v, 0), (n, len(v)))


class MillisecondsTest(unittest.TestCase):
    """Durations in seconds become the wire's whole milliseconds."""

    def test_a_positive_duration_never_becomes_zero(self):
        # 0 on the wire means something else (answer now, no delay given).
        from sift.options import seconds_to_ms
        self.assertEqual(seconds_to_ms(0.0004, "wait"), 1)
        self.assertEqual(seconds_to_ms(1e-9, "delay"), 1)
        self.assertEqual(seconds_to_ms(0, "wait"), 0)
        self.assertEqual(seconds_to_ms(0.1, "wait"), 100)
        self.assertEqual(seconds_to_ms(1.5, "ack_wait"), 1500)
        self.assertEqual(seconds_to_ms(2.0004, "wait"), 2000)


class ErrorCodeTest(unittest.TestCase):

    def test_codes_match_the_proto(self):
        names = {v.name: v.number
                 for v in pb.DESCRIPTOR.enum_types_by_name["ErrorCode"].values}
        # Every code this library knows has its number in proto/sift.proto.
        for code in ErrorCode:
            self.assertEqual(names.get(code.name), int(code), code.name)
        # A code newer than this library (the protocol may add codes) still
        # arrives as a SiftError carrying it, named from the .proto.
        for name, number in names.items():
            exc = error_for_code(number, "m")
            self.assertIsInstance(exc, sift.SiftError)
            if number:
                self.assertEqual((int(exc.code), exc.code_name),
                                 (number, name))

    def test_every_code_has_a_class(self):
        for code in ErrorCode:
            if code == ErrorCode.ERROR_CODE_UNSPECIFIED:
                continue
            exc = error_for_code(code, "m")
            self.assertEqual(exc.code, code)
            self.assertIs(type(exc), error_class(code))
            self.assertIsInstance(exc, sift.SiftError)
            self.assertEqual(str(exc), f"{code.name}: m")

    def test_unknown_and_unspecified_codes(self):
        exc = error_for_code(99, "newer")
        self.assertIs(type(exc), sift.SiftError)
        self.assertEqual((exc.code, exc.code_name), (99, "ERROR_CODE_99"))
        self.assertIsInstance(error_for_code(0, ""), sift.InternalError)

    def test_python_hierarchy(self):
        self.assertTrue(issubclass(sift.InvalidTopic, ValueError))
        self.assertTrue(issubclass(sift.Timeout, TimeoutError))
        self.assertTrue(issubclass(sift.HelloRequired, sift.NotConnected))
        self.assertTrue(issubclass(sift.ClientClosed, sift.NotConnected))
        self.assertIsNone(sift.Timeout("x").code)


class ValidationTest(unittest.TestCase):
    """The tables of protocol.md §5 and §8.1."""

    def topic(self, t, length=256, tokens=16):
        return _validate.topic(t, length, tokens)

    def test_topics(self):
        for ok in ("orders.eu.created", "a", "a-b_c.$x", "~!#%&'()+,/:;<=?@"):
            self.assertEqual(self.topic(ok), ok.encode())
        for bad in ("", "orders..eu", ".orders", "orders.", "orders.*",
                    "orders.>", "orders eu", "a.\x7f", "é", "a*b"):
            with self.assertRaises(sift.InvalidTopic, msg=bad):
                self.topic(bad)
        with self.assertRaisesRegex(sift.InvalidTopic, "empty token at position 2"):
            self.topic("a..b")
        with self.assertRaisesRegex(sift.InvalidTopic, "exceeds the limit of 8"):
            self.topic("abcdefghij", length=8)
        self.topic(".".join("a" * 16))
        with self.assertRaisesRegex(sift.InvalidTopic, "17 tokens"):
            self.topic(".".join("a" * 17))
        with self.assertRaisesRegex(sift.InvalidTopic, "^INVALID_TOPIC: reply_to"):
            _validate.topic("a..b", 256, 16, "reply_to")

    def test_sift_topics_are_the_brokers(self):
        for t in ("$sift", "$sift.deadletter.x"):
            with self.assertRaises(sift.Forbidden):
                _validate.publish_topic(t, 256, 16)
        _validate.publish_topic("$siftx.y", 256, 16)

    def test_patterns(self):
        for ok in ("orders.eu.created", "orders.*.created", "orders.>", "*.*",
                   ">", "*.eu.>", "_INBOX.*.x"):
            self.assertEqual(_validate.pattern(ok, 256, 16), ok.encode())
        for bad, why in (("orders.e*", "whole token"),
                         ("orders.>.created", "must be the last"),
                         ("orders..eu", "empty token"), ("", "empty"),
                         ("a b", "0x20")):
            with self.assertRaisesRegex(sift.InvalidPattern, why, msg=bad):
                _validate.pattern(bad, 256, 16)

    def test_queue_groups(self):
        self.assertEqual(_validate.queue_group(None), b"")
        self.assertEqual(_validate.queue_group("a-Z_0.9:x"), b"a-Z_0.9:x")
        for bad in ("a b", "a/b", "x" * 65):
            with self.assertRaises(sift.InvalidQueueGroup):
                _validate.queue_group(bad)

    def test_headers(self):
        self.assertEqual(_validate.headers({"a": "1", "b": b"\x00"}, 64, 100),
                         [(b"a", b"1"), (b"b", b"\x00")])
        self.assertEqual(_validate.headers([("a", "1"), ("a", "2")], 64, 100),
                         [(b"a", b"1"), (b"a", b"2")])
        self.assertEqual(_validate.headers(None, 0, 0), [])
        for key in ("", "a b", "k:v", "x" * 65, "é"):
            with self.assertRaisesRegex(sift.InvalidHeader, "header 1"):
                _validate.headers([(key, "v")], 64, 1000)
        with self.assertRaises(sift.HeadersTooLarge):
            _validate.headers([("a", "")] * 3, 2, 1000)
        with self.assertRaises(sift.HeadersTooLarge):
            _validate.headers({"a": "x" * 10}, 64, 10)
        with self.assertRaises(sift.Unsupported):
            _validate.headers({"a": "b"}, 0, 0)

    def test_payload(self):
        self.assertEqual(_validate.payload("é", 2), "é".encode())
        with self.assertRaises(sift.PayloadTooLarge):
            _validate.payload(b"abc", 2)


class QueueTest(unittest.TestCase):

    def msg(self, payload=b"x"):
        return sift.Message("t", payload)

    def test_drops_reported_once_per_run_in_place(self):
        q = SyncQueue(2, 0)
        for p in (b"1", b"2", b"3", b"4"):
            q.push(self.msg(p))
        self.assertEqual(q.dropped, 2)
        self.assertEqual(q.pop(0).payload, b"1")
        q.push(self.msg(b"5"))  # room again, after the drops
        self.assertEqual(q.pop(0).payload, b"2")
        with self.assertRaises(sift.MessagesDropped) as cm:
            q.pop(0)
        self.assertEqual(cm.exception.count, 2)
        self.assertEqual(q.pop(0).payload, b"5")
        with self.assertRaises(sift.Timeout):
            q.pop(0.01)

    def test_byte_bound_and_close(self):
        q = SyncQueue(0, 5)
        q.push(self.msg(b"123"))
        q.push(self.msg(b"456"))  # 6 bytes would not fit
        q.close()
        self.assertEqual(q.pop(0).payload, b"123")
        with self.assertRaises(sift.MessagesDropped):
            q.pop(0)
        with self.assertRaises(sift.SubscriptionClosed):
            q.pop(None)


class FakeSession(Session):
    """A Session whose driver records what it would do."""

    def __init__(self, **kw):
        args = dict(name=b"t", accepts_batches=True, reconnect=True,
                    ping_interval=5.0, max_pending=100)
        args.update(kw)
        super().__init__(**args)
        self.results = {}
        self.reports = []
        self.delivered = []

    def _resolve(self, waiter, value):
        if waiter is not None:
            self.results[waiter] = ("ok", value)

    def _fail(self, waiter, exc):
        if waiter is not None:
            self.results[waiter] = ("error", exc)

    def _deliver(self, sub, message):
        self.delivered.append(message)

    def _close_sink(self, sub, exc):
        pass

    def _report(self, exc):
        self.reports.append(exc)

    def _make_message(self, **fields):
        return sift.Message(**fields)

    # Test helpers: the broker's side.
    def sent(self):
        return [pb.Header.FromString(f[0]) for f in self.take_sendable()]

    def welcome(self, rid=None, client_id="c1-x"):
        h = pb.Header(request_id=rid or self.hello_rid)
        h.welcome.client_id = client_id
        h.welcome.inbox_prefix = "_INBOX." + client_id
        h.welcome.max_payload_bytes = 1024
        h.welcome.max_topic_length = 256
        h.welcome.max_topic_tokens = 16
        h.welcome.client_timeout_ms = 3000
        self.on_frames([h.SerializeToString()])

    def error(self, rid, code, message="x"):
        h = pb.Header(request_id=rid)
        h.error.code = code
        h.error.message = message
        self.on_frames([h.SerializeToString()])

    def ok(self, rid):
        h = pb.Header(request_id=rid)
        h.ok.SetInParent()
        self.on_frames([h.SerializeToString()])


class SessionTest(unittest.TestCase):

    def connected(self, **kw):
        s = FakeSession(**kw)
        s.start("connect", 0.0)
        [hello] = s.sent()
        self.assertEqual(hello.hello.protocol_version, 1)
        s.welcome()
        self.assertEqual(s.results["connect"][0], "ok")
        self.assertTrue(s.ready)
        self.assertEqual(s.ping_interval, 1.0)  # client_timeout_ms / 3
        return s

    def test_hello_required_rehellos_resubscribes_and_resends(self):
        s = self.connected()
        sub = SubState(s.next_id(), b"a.>", sink=object())
        s.add_sub(sub)
        rid = s.next_id()
        s.request(SUB, [sub.encode(rid)], "sub", rid, sid=sub.sid)
        s.sent()
        s.ok(rid)
        self.assertEqual(s.results["sub"], ("ok", None))
        # A confirmed PUB the restarted broker refuses with HELLO_REQUIRED.
        prid = s.next_id()
        s.request(OK, [_wire.pub(prid, b"a.b", b"", True, []), b""], "pub",
                  prid)
        s.sent()
        s.error(prid, ErrorCode.HELLO_REQUIRED)
        self.assertNotIn("pub", s.results)   # kept, to be resent
        self.assertFalse(s.ready)
        [hello] = s.sent()
        self.assertTrue(hello.HasField("hello"))
        # User traffic waits for the new session.
        s.enqueue([_wire.pub(0, b"a.c", b"", False, []), b""])
        self.assertEqual(s.sent(), [])
        s.welcome(hello.request_id, "c2-x")
        self.assertEqual(s.reconnects, 1)
        sent = s.sent()
        self.assertEqual([h.WhichOneof("command") for h in sent],
                         ["sub", "pub", "pub"])
        self.assertEqual(sent[0].sub.sid, sub.sid)
        self.assertEqual(sent[1].request_id, prid)  # the refused one, again
        s.ok(prid)
        self.assertEqual(s.results["pub"], ("ok", None))

    def test_replies_inside_a_batch_answer_their_requests_in_order(self):
        s = self.connected()
        hello = pb.Header.FromString(
            _wire.hello(1, b"t", accepts_batches=True))
        self.assertTrue(hello.hello.accepts_batched_replies)
        rids = [s.next_id() for _ in range(3)]
        for i, rid in enumerate(rids):
            s.request(OK, [_wire.pub(rid, b"a", b"", True, []), b""],
                      "pub%d" % i, rid)
        s.sent()
        ok0 = pb.Header(request_id=rids[0])
        ok0.ok.stream_seq = 7
        err1 = pb.Header(request_id=rids[1])
        err1.error.code = ErrorCode.STORE_FULL
        err1.error.message = "full"
        ok2 = pb.Header(request_id=rids[2])
        ok2.ok.SetInParent()
        body = b"".join(_wire.batch_entry(h.SerializeToString(), b"")
                        for h in (ok0, err1, ok2))
        s.on_frames([_wire.batch_header(3), body])
        self.assertEqual(s.results["pub0"][0], "ok")
        self.assertEqual(s.results["pub1"][0], "error")
        self.assertIsInstance(s.results["pub1"][1], sift.StoreFull)
        self.assertEqual(s.results["pub2"][0], "ok")

    def test_unanswered_requests_after_a_disconnect(self):
        s = self.connected()
        srid, prid = s.next_id(), s.next_id()
        s.request(STATS, [_wire.stats(srid)], "stats", srid)
        s.request(OK, [_wire.pub(prid, b"a", b"", True, []), b""], "pub",
                  prid)
        s.sent()
        s.on_disconnected()
        s.on_connected()
        [hello] = s.sent()
        s.welcome(hello.request_id, "c2-x")
        # STATS is resent (harmless twice); the PUB may have been published:
        # the caller is told so, not left to time out.
        self.assertEqual([h.request_id for h in s.sent()], [srid])
        self.assertIsInstance(s.results["pub"][1], sift.NotConnected)

    def test_inbox_is_resubscribed_under_the_new_prefix(self):
        s = self.connected()
        inbox = SubState(s.next_id(), b"_INBOX.c1-x.>", inbox=True)
        s.add_sub(inbox)
        s.on_disconnected()
        s.on_connected()
        [hello] = s.sent()
        s.welcome(hello.request_id, "c9-y")
        [resub] = s.sent()
        self.assertEqual(resub.sub.pattern, b"_INBOX.c9-y.>")

    def test_without_reconnect_the_session_dies(self):
        s = self.connected(reconnect=False)
        rid = s.next_id()
        s.request(STATS, [_wire.stats(rid)], "stats", rid)
        s.sent()
        s.error(rid, ErrorCode.HELLO_REQUIRED)
        self.assertIsInstance(s.results["stats"][1], sift.HelloRequired)
        with self.assertRaises(sift.NotConnected):
            s.check_open()

    def test_version_mismatch_and_too_many_clients(self):
        s = FakeSession()
        s.start("connect", 0.0)
        s.sent()
        s.error(s.hello_rid, ErrorCode.TOO_MANY_CLIENTS)
        self.assertNotIn("connect", s.results)  # retried with backoff
        self.assertIsNotNone(s.hello_retry_at)
        s.tick(s.hello_retry_at)
        [hello] = s.sent()
        s.error(hello.request_id, ErrorCode.VERSION_MISMATCH, "speaks 1")
        self.assertIsInstance(s.results["connect"][1], sift.VersionMismatch)

    def test_pending_limit_and_unmatched_errors(self):
        s = self.connected(max_pending=2)
        s.on_disconnected()
        s.enqueue([b"1"])
        s.enqueue([b"2"])
        with self.assertRaises(sift.PendingLimit):
            s.enqueue([b"3"])
        s.error(0, ErrorCode.INVALID_TOPIC)
        self.assertIsInstance(s.reports[0], sift.InvalidTopic)

    def test_slow_consumer_notice(self):
        s = self.connected()
        h = pb.Header()
        h.error.code = ErrorCode.SLOW_CONSUMER
        h.error.dropped = 12
        s.on_frames([h.SerializeToString()])
        self.assertEqual(s.broker_dropped, 12)
        self.assertEqual(s.reports[0].dropped, 12)

    def test_batches_small_publishes(self):
        s = self.connected()
        s.limits = sift.Limits(max_batch_bytes=1 << 20)
        for i in range(3):
            s.enqueue([_wire.pub(0, b"t", b"", False, []), b"p%d" % i],
                      batchable=True)
        s.enqueue([_wire.stats(9)])
        frames = s.take_sendable()
        self.assertEqual(len(frames), 2)
        self.assertEqual(pb.Header.FromString(frames[0][0]).batch.count, 3)
        self.assertEqual([p for _, p in _wire.iter_batch(frames[0][1])],
                         [b"p0", b"p1", b"p2"])

    def test_ping_answered_and_sent(self):
        s = self.connected()
        h = pb.Header(request_id=77)
        h.ping.SetInParent()
        s.on_frames([h.SerializeToString()])
        [pong] = s.sent()
        self.assertEqual((pong.WhichOneof("command"), pong.request_id),
                         ("pong", 77))
        s.tick(s.next_ping + 0.001)
        [ping] = s.sent()
        self.assertTrue(ping.HasField("ping"))


if __name__ == "__main__":
    unittest.main()
