// The client's stream calls against a scripted fake broker (fake_broker.h):
// what each call sends, and how it reads the answers, DELIVERs and errors.
// The real broker is exercised by tests/streams_cli_test.cc.
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/protocol/codec.h"
#include "clients/cpp/client.h"
#include "clients/cpp/fake_broker.h"
#include "clients/cpp/stream_wire.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"

namespace sift {
namespace {

using test::Answer;
using test::ConnectTo;
using test::DeliverOf;
using test::ErrorFor;
using test::FakeBroker;
using test::OkFor;
using test::Out;

wire::StreamInfo SampleInfo(const std::string& name) {
  wire::StreamInfo info;
  info.mutable_config()->set_name(name);
  info.mutable_config()->add_subjects("orders.>");
  info.mutable_config()->set_fsync("always");
  info.mutable_config()->set_dedup_window_ms(120000);
  info.set_first_seq(1);
  info.set_last_seq(9);
  info.set_durable_seq(8);
  info.set_messages(9);
  info.set_bytes(4096);
  info.set_appended(12);
  info.set_fsyncs(3);
  info.mutable_config()->set_dedup_max_ids(100000);
  info.set_dedup_ids_forgotten_early(7);
  wire::ConsumerInfo* c = info.add_consumers();
  c->set_name("billing");
  c->set_ack_floor(4);
  c->set_delivered_seq(6);
  c->set_waiting(1);
  c->set_in_flight(2);
  c->set_attached(true);
  return info;
}

TEST(StreamWireTest, ConfigRoundTrip) {
  StreamConfig config;
  config.name = "orders";
  config.subjects = {"orders.>", "billing.*"};
  config.max_age = absl::Hours(24);
  config.max_bytes = 1 << 30;
  config.max_msgs = 1000;
  config.fsync = "10ms";
  config.dedup_window = absl::Minutes(5);
  config.dedup_max_ids = 200000;
  config.segment_max_bytes = 1 << 20;
  wire::StreamConfig w;
  internal::ToWire(config, &w);
  EXPECT_EQ(w.max_age_ms(), 86400000u);
  EXPECT_EQ(w.dedup_window_ms(), 300000u);
  EXPECT_EQ(w.dedup_max_ids(), 200000u);
  EXPECT_EQ(w.subjects_size(), 2);
  const StreamConfig back = internal::FromWire(w);
  EXPECT_EQ(back.name, "orders");
  EXPECT_EQ(back.subjects, config.subjects);
  EXPECT_EQ(back.max_age, absl::Hours(24));
  EXPECT_EQ(back.max_bytes, config.max_bytes);
  EXPECT_EQ(back.max_msgs, 1000u);
  EXPECT_EQ(back.fsync, "10ms");
  EXPECT_EQ(back.dedup_window, absl::Minutes(5));
  EXPECT_EQ(back.dedup_max_ids, 200000u);
  EXPECT_EQ(back.segment_max_bytes, config.segment_max_bytes);

  // Under a millisecond is not "unlimited".
  config.max_age = absl::Microseconds(10);
  internal::ToWire(config, &w);
  EXPECT_EQ(w.max_age_ms(), 1u);
}

TEST(StreamWireTest, StartSendsOnlyThePolicysField) {
  StreamStart start;
  start.stream = "orders";
  start.consumer = "billing";
  start.deliver = DeliverPolicy::kFromTime;
  start.start_seq = 42;  // not for kFromTime: left out
  start.start_time = absl::FromUnixMillis(1700000000123);
  wire::StreamStart w;
  internal::ToWire(start, &w);
  EXPECT_EQ(w.stream(), "orders");
  EXPECT_EQ(w.consumer(), "billing");
  EXPECT_EQ(w.deliver(), wire::DELIVER_FROM_TIME);
  EXPECT_EQ(w.start_seq(), 0u);
  EXPECT_EQ(w.start_time_ms(), 1700000000123u);
  const StreamStart back = internal::FromWire(w);
  EXPECT_EQ(back.deliver, DeliverPolicy::kFromTime);
  EXPECT_EQ(back.start_time, start.start_time);

  start.deliver = DeliverPolicy::kFromSeq;
  w.Clear();
  internal::ToWire(start, &w);
  EXPECT_EQ(w.deliver(), wire::DELIVER_FROM_SEQ);
  EXPECT_EQ(w.start_seq(), 42u);
  EXPECT_EQ(w.start_time_ms(), 0u);
}

TEST(StreamWireTest, InfoFromWire) {
  const StreamInfo info = internal::FromWire(SampleInfo("orders"));
  EXPECT_EQ(info.config.name, "orders");
  EXPECT_EQ(info.config.dedup_window, absl::Minutes(2));
  EXPECT_EQ(info.first_seq, 1u);
  EXPECT_EQ(info.last_seq, 9u);
  EXPECT_EQ(info.durable_seq, 8u);
  EXPECT_EQ(info.messages, 9u);
  EXPECT_EQ(info.bytes, 4096u);
  EXPECT_EQ(info.appended, 12u);
  EXPECT_EQ(info.fsyncs, 3u);
  EXPECT_EQ(info.config.dedup_max_ids, 100000u);
  EXPECT_EQ(info.dedup_ids_forgotten_early, 7u);
  ASSERT_EQ(info.consumers.size(), 1u);
  EXPECT_EQ(info.consumers[0].name, "billing");
  EXPECT_EQ(info.consumers[0].ack_floor, 4u);
  EXPECT_EQ(info.consumers[0].delivered_seq, 6u);
  EXPECT_EQ(info.consumers[0].in_flight, 2u);
  EXPECT_EQ(info.consumers[0].waiting, 1u);
  EXPECT_TRUE(info.consumers[0].attached);
}

TEST(StreamClientTest, AdminCallsSendTheirOpAndReadTheReply) {
  FakeBroker broker([](const wire::Header& h) -> std::vector<Out> {
    if (!h.has_stream()) return {};
    const wire::StreamRequest& req = h.stream();
    wire::Header reply;
    reply.set_request_id(h.request_id());
    switch (req.op()) {
      case wire::STREAM_ADD:
      case wire::STREAM_INFO:
        if (req.config().name() == "nope") {
          return {Answer(ErrorFor(h.request_id(), wire::UNKNOWN_STREAM))};
        }
        if (req.config().name() == "bad") {
          return {Answer(ErrorFor(h.request_id(), wire::INVALID_STREAM))};
        }
        *reply.mutable_stream_reply()->add_streams() =
            SampleInfo(req.config().name());
        return {Answer(std::move(reply))};
      case wire::STREAM_LIST:
        *reply.mutable_stream_reply()->add_streams() = SampleInfo("a");
        *reply.mutable_stream_reply()->add_streams() = SampleInfo("b");
        return {Answer(std::move(reply))};
      case wire::STREAM_DELETE:
      case wire::CONSUMER_DELETE:
        // One answers OK, the other an empty STREAM_REPLY: both mean done.
        if (req.op() == wire::STREAM_DELETE) {
          return {Answer(OkFor(h.request_id()))};
        }
        reply.mutable_stream_reply();
        return {Answer(std::move(reply))};
      default:
        return {};
    }
  });
  auto client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);

  StreamConfig config;
  config.name = "orders";
  config.subjects = {"orders.>"};
  config.max_msgs = 10;
  absl::StatusOr<StreamInfo> added = client->AddStream(config);
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(added->config.name, "orders");
  EXPECT_EQ(added->last_seq, 9u);
  auto add = broker.WaitFor([](const wire::Header& h) {
    return h.has_stream() && h.stream().op() == wire::STREAM_ADD;
  });
  ASSERT_TRUE(add.has_value());
  EXPECT_NE(add->request_id(), 0u);
  EXPECT_EQ(add->stream().config().subjects(0), "orders.>");
  EXPECT_EQ(add->stream().config().max_msgs(), 10u);

  absl::StatusOr<StreamInfo> info = client->GetStreamInfo("orders");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->consumers.size(), 1u);

  absl::StatusOr<std::vector<StreamInfo>> list = client->ListStreams();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].config.name, "b");

  EXPECT_TRUE(client->DeleteStream("orders").ok());
  EXPECT_TRUE(client->DeleteConsumer("orders", "billing").ok());
  auto del = broker.WaitFor([](const wire::Header& h) {
    return h.has_stream() && h.stream().op() == wire::CONSUMER_DELETE;
  });
  ASSERT_TRUE(del.has_value());
  EXPECT_EQ(del->stream().config().name(), "orders");
  EXPECT_EQ(del->stream().consumer(), "billing");

  absl::Status missing = client->GetStreamInfo("nope").status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
  EXPECT_EQ(protocol::WireCodeOf(missing), wire::UNKNOWN_STREAM);
  config.name = "bad";
  absl::Status bad = client->AddStream(config).status();
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument) << bad;
  EXPECT_EQ(protocol::WireCodeOf(bad), wire::INVALID_STREAM);
  // A negative duration is refused before anything is sent (it went out as
  // 0: unlimited or the default).
  const size_t sent = broker.received().size();
  config.name = "negative";
  config.max_age = absl::Milliseconds(-5);
  absl::Status negative = client->AddStream(config).status();
  EXPECT_EQ(negative.code(), absl::StatusCode::kInvalidArgument) << negative;
  EXPECT_NE(negative.message().find("max_age is negative"),
            std::string_view::npos) << negative;
  config.max_age = absl::ZeroDuration();
  config.dedup_window = absl::Seconds(-1);
  EXPECT_EQ(client->AddStream(config).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(broker.received().size(), sent);
}

TEST(StreamClientTest, FetchCollectsItsDeliversUntilTheOk) {
  FakeBroker broker([](const wire::Header& h) -> std::vector<Out> {
    if (!h.has_fetch()) return {};
    const uint64_t sid = h.fetch().sid();
    if (h.fetch().start().stream() == "nope") {
      return {Answer(ErrorFor(h.request_id(), wire::UNKNOWN_STREAM))};
    }
    std::vector<Out> out;
    for (uint64_t seq = 1; seq <= 3; ++seq) {
      out.push_back(DeliverOf(sid, absl::StrCat("orders.", seq),
                              absl::StrCat("p", seq), seq, 1000 + seq,
                              h.fetch().has_ack() ? 100 + seq : 0));
    }
    wire::Header ok = OkFor(h.request_id());
    ok.mutable_ok()->set_delivered(3);
    out.push_back(Answer(std::move(ok)));
    return out;
  });
  auto client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);

  FetchOptions options;
  options.start.stream = "orders";
  options.start.consumer = "worker";
  options.start.deliver = DeliverPolicy::kAll;
  options.batch = 5;
  options.max_wait = absl::Milliseconds(250);
  options.pattern = "orders.*";
  options.ack = AckOptions{};
  options.ack->ack_wait = absl::Seconds(7);
  absl::StatusOr<std::vector<Message>> got = client->Fetch(options);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 3u);
  for (uint64_t i = 0; i < 3; ++i) {
    const Message& m = (*got)[i];
    EXPECT_EQ(m.topic(), absl::StrCat("orders.", i + 1));
    EXPECT_EQ(m.payload(), absl::StrCat("p", i + 1));
    EXPECT_EQ(m.stream_seq(), i + 1);
    EXPECT_EQ(m.timestamp_ms(), 1001 + i);
    EXPECT_EQ(m.delivery_id(), 101 + i);
    EXPECT_TRUE(client->Ack(m).ok());
  }
  auto fetch = broker.WaitFor([](const wire::Header& h) {
    return h.has_fetch();
  });
  ASSERT_TRUE(fetch.has_value());
  EXPECT_NE(fetch->fetch().sid(), 0u);
  EXPECT_NE(fetch->request_id(), 0u);
  EXPECT_EQ(fetch->fetch().start().stream(), "orders");
  EXPECT_EQ(fetch->fetch().start().consumer(), "worker");
  EXPECT_EQ(fetch->fetch().start().deliver(), wire::DELIVER_ALL);
  EXPECT_EQ(fetch->fetch().batch(), 5u);
  EXPECT_EQ(fetch->fetch().max_wait_ms(), 250u);
  EXPECT_EQ(fetch->fetch().pattern(), "orders.*");
  EXPECT_EQ(fetch->fetch().ack().ack_wait_ms(), 7000u);
  // Consecutive Ack() calls may join one ACK command.
  auto ack = broker.WaitFor([](const wire::Header& h) {
    return h.has_ack() && h.ack().delivery_ids_size() > 0 &&
           h.ack().delivery_ids(h.ack().delivery_ids_size() - 1) == 103;
  });
  EXPECT_TRUE(ack.has_value());

  // Two fetches use two sids.
  got = client->Fetch(options);
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<uint64_t> sids;
  for (const wire::Header& h : broker.received()) {
    if (h.has_fetch()) sids.push_back(h.fetch().sid());
  }
  ASSERT_EQ(sids.size(), 2u);
  EXPECT_NE(sids[0], sids[1]);

  options.start.stream = "nope";
  absl::Status missing = client->Fetch(options).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;

  options.batch = 0;
  EXPECT_EQ(client->Fetch(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.batch = 10001;
  EXPECT_EQ(client->Fetch(options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The fake broker's answer to a FETCH: record 1 of "orders" (delivery id 101),
// then the OK.
std::vector<Out> AnswerFetchWithOneRecord(const wire::Header& h) {
  if (!h.has_fetch()) return {};
  std::vector<Out> out;
  out.push_back(DeliverOf(h.fetch().sid(), "orders.1", "p1", 1, 1001, 101));
  wire::Header ok = OkFor(h.request_id());
  ok.mutable_ok()->set_delivered(1);
  out.push_back(Answer(std::move(ok)));
  return out;
}

// An acked FETCH of consumer "worker" of stream "orders" (the fake broker's
// AnswerFetchWithOneRecord answers it).
FetchOptions WorkerFetch() {
  FetchOptions options;
  options.start.stream = "orders";
  options.start.consumer = "worker";
  options.ack = AckOptions{};
  return options;
}

// Durations go to the broker in whole milliseconds, rounded up: a positive
// one never becomes 0, which means something else on the wire (answer at
// once; no delay given, so the backoff).
TEST(StreamClientTest, DurationsGoUpToTheNextMillisecond) {
  FakeBroker broker(AnswerFetchWithOneRecord);
  auto client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);

  FetchOptions options = WorkerFetch();
  options.max_wait = absl::Microseconds(500);
  options.ack->ack_wait = absl::Microseconds(1200);
  options.ack->backoff_initial = absl::Milliseconds(3);
  absl::StatusOr<std::vector<Message>> got = client->Fetch(options);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  EXPECT_TRUE(client->Nack((*got)[0], absl::Microseconds(1500)).ok());

  auto fetch = broker.WaitFor([](const wire::Header& h) {
    return h.has_fetch();
  });
  ASSERT_TRUE(fetch.has_value());
  EXPECT_EQ(fetch->fetch().max_wait_ms(), 1u);
  EXPECT_EQ(fetch->fetch().ack().ack_wait_ms(), 2u);
  EXPECT_EQ(fetch->fetch().ack().backoff_initial_ms(), 3u);
  auto nack = broker.WaitFor([](const wire::Header& h) {
    return h.has_nack();
  });
  ASSERT_TRUE(nack.has_value());
  EXPECT_EQ(nack->nack().delivery_id(), 101u);
  EXPECT_EQ(nack->nack().delay_ms(), 2u);
}

// A negative duration is a caller's mistake, not "none": refused before
// anything is sent.
TEST(StreamClientTest, NegativeDurationsAreRefused) {
  FakeBroker broker(AnswerFetchWithOneRecord);
  auto client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);

  FetchOptions options = WorkerFetch();
  options.max_wait = absl::Milliseconds(-1);
  absl::StatusOr<std::vector<Message>> got = client->Fetch(options);
  EXPECT_TRUE(absl::IsInvalidArgument(got.status())) << got.status();
  EXPECT_NE(got.status().message().find("max_wait is -1ms"),
            absl::string_view::npos)
      << got.status();

  // Infinite, or past the broker's hour, likewise.
  options.max_wait = absl::InfiniteDuration();
  EXPECT_TRUE(absl::IsInvalidArgument(client->Fetch(options).status()));
  options.max_wait = absl::Hours(1) + absl::Milliseconds(1);
  EXPECT_TRUE(absl::IsInvalidArgument(client->Fetch(options).status()));
  options.max_wait = absl::ZeroDuration();
  options.ack->backoff_initial = absl::Milliseconds(-1);
  EXPECT_TRUE(absl::IsInvalidArgument(client->Fetch(options).status()));
  SubscribeOptions sub_options;
  sub_options.ack = AckOptions{};
  sub_options.ack->ack_wait = absl::InfiniteDuration();
  EXPECT_TRUE(absl::IsInvalidArgument(
      client->Subscribe("orders.>", sub_options).status()));
  options.ack->backoff_initial.reset();

  got = client->Fetch(options);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  absl::Status nack = client->Nack((*got)[0], absl::Seconds(-2));
  EXPECT_TRUE(absl::IsInvalidArgument(nack)) << nack;
  nack = client->Nack((*got)[0], absl::InfiniteDuration());
  EXPECT_TRUE(absl::IsInvalidArgument(nack)) << nack;

  PublishOptions later;
  later.delay = absl::Milliseconds(-5);
  absl::Status pub = client->PublishWith("orders.2", "x", later);
  EXPECT_TRUE(absl::IsInvalidArgument(pub)) << pub;
  EXPECT_NE(pub.message().find("delay is negative"), absl::string_view::npos)
      << pub;

  // None of them reached the broker: Flush() returns once the broker has
  // read everything sent before it.
  ASSERT_TRUE(client->Flush(absl::Seconds(5)).ok());
  int fetches = 0;
  for (const wire::Header& h : broker.received()) {
    EXPECT_FALSE(h.has_nack() || h.has_pub()) << h.ShortDebugString();
    if (h.has_fetch()) ++fetches;
  }
  EXPECT_EQ(fetches, 1);
}

TEST(StreamClientTest, FetchWaitsMaxWaitPlusTimeoutThenGivesUp) {
  FakeBroker broker([](const wire::Header&) { return std::vector<Out>{}; });
  auto client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);
  FetchOptions options;
  options.start.stream = "orders";
  options.max_wait = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  absl::Status s = client->Fetch(options, absl::Milliseconds(200)).status();
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  EXPECT_GE(took, absl::Milliseconds(500));
  EXPECT_LT(took, absl::Seconds(5));
  // A DELIVER for the abandoned fetch's sid, arriving late, is dropped.
  auto fetch = broker.WaitFor([](const wire::Header& h) {
    return h.has_fetch();
  });
  ASSERT_TRUE(fetch.has_value());
  broker.Push(DeliverOf(fetch->fetch().sid(), "orders.x", "late", 1, 1));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(client->Stats(absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);  // still alive
}

TEST(StreamClientTest, ConfirmedPublishReturnsStreamSeqAndDuplicate) {
  FakeBroker broker([](const wire::Header& h) -> std::vector<Out> {
    if (!h.has_pub() || !h.pub().confirm()) return {};
    wire::Header ok = OkFor(h.request_id());
    if (h.pub().topic() == "orders.x") {
      ok.mutable_ok()->set_stream_seq(7);
      ok.mutable_ok()->set_duplicate(h.pub().headers_size() > 0 &&
                                     h.pub().headers(0).value() == "id-1");
    }
    return {Answer(std::move(ok))};
  });
  auto client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);

  PublishOptions options;
  options.msg_id = "id-1";
  PublishAck ack;
  ASSERT_TRUE(client
                  ->PublishConfirmedWith("orders.x", "hi", options,
                                         absl::Seconds(5), &ack)
                  .ok());
  EXPECT_EQ(ack.stream_seq, 7u);
  EXPECT_TRUE(ack.duplicate);
  auto pub = broker.WaitFor([](const wire::Header& h) { return h.has_pub(); });
  ASSERT_TRUE(pub.has_value());
  ASSERT_EQ(pub->pub().headers_size(), 1);
  EXPECT_EQ(pub->pub().headers(0).key(), kMsgIdHeader);
  EXPECT_EQ(pub->pub().headers(0).value(), "id-1");

  // msg_id goes after the other headers.
  options.headers = {{"region", "eu"}};
  options.msg_id = "id-2";
  ASSERT_TRUE(client
                  ->PublishConfirmedWith("orders.x", "hi", options,
                                         absl::Seconds(5), &ack)
                  .ok());
  EXPECT_EQ(ack.stream_seq, 7u);
  EXPECT_FALSE(ack.duplicate);
  auto second = broker.WaitFor([](const wire::Header& h) {
    return h.has_pub() && h.pub().headers_size() == 2;
  });
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->pub().headers(0).key(), "region");
  EXPECT_EQ(second->pub().headers(1).value(), "id-2");

  // No stream: zeros.
  ack.stream_seq = 99;
  ASSERT_TRUE(client
                  ->PublishConfirmedWith("plain.x", "hi", PublishOptions{},
                                         absl::Seconds(5), &ack)
                  .ok());
  EXPECT_EQ(ack.stream_seq, 0u);
  EXPECT_FALSE(ack.duplicate);
}

// Resubscribing after the broker lost the session (HELLO_REQUIRED): a
// durable consumer as first asked, an ephemeral one after its last record.
TEST(StreamClientTest, StreamSubscriptionsResubscribeWhereTheyWere) {
  std::atomic<bool> lose_session{false};
  std::set<uint64_t> sids;  // the broker's thread's
  FakeBroker broker([&](const wire::Header& h) -> std::vector<Out> {
    if (h.has_sub()) {
      std::vector<Out> out = {Answer(OkFor(h.request_id()))};
      if (!sids.insert(h.sub().sid()).second) return out;  // resubscribed
      for (uint64_t seq = 4; seq <= 5; ++seq) {
        out.push_back(DeliverOf(h.sub().sid(), "orders.x",
                                absl::StrCat("m", seq), seq, 77));
      }
      return out;
    }
    if (h.has_stats() && lose_session) {
      return {Answer(ErrorFor(h.request_id(), wire::HELLO_REQUIRED))};
    }
    return {};
  });
  auto client = ConnectTo(broker);
  ASSERT_NE(client, nullptr);

  SubscribeOptions ephemeral;
  ephemeral.stream = StreamStart{};
  ephemeral.stream->stream = "orders";
  ephemeral.stream->deliver = DeliverPolicy::kAll;
  auto sub = client->Subscribe("orders.>", ephemeral);
  ASSERT_TRUE(sub.ok()) << sub.status();
  SubscribeOptions durable = ephemeral;
  durable.stream->consumer = "audit";
  durable.ack = AckOptions{};
  auto durable_sub = client->Subscribe("orders.>", durable);
  ASSERT_TRUE(durable_sub.ok()) << durable_sub.status();

  for (uint64_t seq = 4; seq <= 5; ++seq) {
    absl::StatusOr<Message> m = (*sub)->Next(absl::Seconds(5));
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->stream_seq(), seq);
    EXPECT_EQ(m->timestamp_ms(), 77u);
    EXPECT_EQ(m->payload(), absl::StrCat("m", seq));
  }
  auto first = broker.WaitForNth(0, [](const wire::Header& h) {
    return h.has_sub() && h.sub().stream().consumer().empty();
  });
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->sub().pattern(), "orders.>");
  EXPECT_EQ(first->sub().stream().stream(), "orders");
  EXPECT_EQ(first->sub().stream().deliver(), wire::DELIVER_ALL);

  lose_session = true;
  client->Stats(absl::Seconds(1)).status().IgnoreError();
  auto again = broker.WaitForNth(1, [](const wire::Header& h) {
    return h.has_sub() && h.sub().stream().consumer().empty();
  });
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->sub().stream().deliver(), wire::DELIVER_FROM_SEQ);
  EXPECT_EQ(again->sub().stream().start_seq(), 6u);
  auto durable_again = broker.WaitForNth(1, [](const wire::Header& h) {
    return h.has_sub() && h.sub().stream().consumer() == "audit";
  });
  ASSERT_TRUE(durable_again.has_value());
  EXPECT_EQ(durable_again->sub().stream().deliver(), wire::DELIVER_ALL);
  EXPECT_TRUE(durable_again->sub().has_ack());
  EXPECT_GE(broker.hellos(), 2);
}

}  // namespace
}  // namespace sift
