// At-least-once delivery (docs/protocol.md §6.2) through a real siftd:
// explicit acks, redelivery after an ack wait or a NACK (with backoff), the
// in-progress signal, max_deliver and the dead-letter topic, prefetch, and
// work queues (queue groups with acks) whose members nack, stall or vanish.
#include <atomic>
#include <cstdint>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/protocol/codec.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"
#include "tests/harness.h"
#include "tests/raw_dealer.h"
#include "tests/siftd_process.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(10);

AckOptions Fast(absl::Duration ack_wait, uint32_t max_deliver = 5) {
  AckOptions a;
  a.ack_wait = ack_wait;
  a.max_deliver = max_deliver;
  a.backoff_initial = absl::Milliseconds(50);
  a.backoff_max = absl::Milliseconds(200);
  a.backoff_jitter = 0;
  return a;
}

std::unique_ptr<Subscription> Sub(Client& c, const std::string& pattern,
                                  const AckOptions& ack,
                                  const std::string& group = "") {
  SubscribeOptions o;
  o.ack = ack;
  o.queue_group = group;
  auto s = c.Subscribe(pattern, o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

// A delivery carries an id and attempt 1; left unacknowledged it comes back
// after the ack wait as attempt 2 (after the backoff); acked, it does not
// come back. A subscription without acks gets neither.
TEST(AcksTest, UnacknowledgedDeliveriesComeBackAndAckedOnesDoNot) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto worker = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(worker, nullptr);
  auto sub = Sub(*worker, "jobs.>", Fast(absl::Milliseconds(300)));
  ASSERT_NE(sub, nullptr);
  SubscribeOptions plain_options;
  auto plain = worker->Subscribe("jobs.>", plain_options);
  ASSERT_TRUE(plain.ok());

  ASSERT_TRUE(pub->PublishConfirmed("jobs.a", "one", kTimeout).ok());
  auto first = sub->Next(kTimeout);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_NE(first->delivery_id(), 0u);
  EXPECT_EQ(first->attempt(), 1u);
  auto untracked = (*plain)->Next(kTimeout);
  ASSERT_TRUE(untracked.ok());
  EXPECT_EQ(untracked->delivery_id(), 0u);
  EXPECT_EQ(worker->Ack(*untracked).code(),
            absl::StatusCode::kFailedPrecondition);

  // Not acked: back after 300 ms + 50 ms backoff, as attempt 2.
  const absl::Time sent = absl::Now();
  auto again = sub->Next(kTimeout);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->payload(), "one");
  EXPECT_EQ(again->attempt(), 2u);
  EXPECT_NE(again->delivery_id(), first->delivery_id());
  EXPECT_GE(absl::Now() - sent, absl::Milliseconds(250));
  ASSERT_TRUE(worker->Ack(*again).ok());
  // Acked: nothing more within three ack waits.
  auto none = sub->Next(absl::Seconds(1));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kDeadlineExceeded)
      << (none.ok() ? std::string(none->payload()) : "");
}

// NACK with a delay redelivers after it; PROGRESS keeps a long task from
// being redelivered while its worker says it is still working.
TEST(AcksTest, NackDelaysAndProgressHoldsTheAckWait) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto worker = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  ASSERT_NE(worker, nullptr);
  auto sub = Sub(*worker, "t", Fast(absl::Milliseconds(400)));
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(pub->PublishConfirmed("t", "x", kTimeout).ok());
  auto m = sub->Next(kTimeout);
  ASSERT_TRUE(m.ok());
  const absl::Time nacked = absl::Now();
  ASSERT_TRUE(worker->Nack(*m, absl::Milliseconds(500)).ok());
  auto back = sub->Next(kTimeout);
  ASSERT_TRUE(back.ok());
  EXPECT_GE(absl::Now() - nacked, absl::Milliseconds(450));
  EXPECT_EQ(back->attempt(), 2u);

  // Work for 3 ack waits, signalling progress every 100 ms: no redelivery.
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(worker->InProgress(*back).ok());
    absl::SleepFor(absl::Milliseconds(100));
  }
  auto during = sub->Next(absl::Milliseconds(10));
  EXPECT_EQ(during.status().code(), absl::StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(worker->Ack(*back).ok());
  EXPECT_EQ(sub->Next(absl::Seconds(1)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

// After max_deliver deliveries a message goes to $sift.deadletter.<topic>
// with its original topic, the reason and the attempts as headers.
TEST(AcksTest, MaxDeliverSendsToTheDeadLetterTopic) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto worker = Connect(siftd->endpoint());
  auto watcher = Connect(siftd->endpoint());
  ASSERT_NE(watcher, nullptr);
  auto dead = watcher->Subscribe("$sift.deadletter.>", {});
  ASSERT_TRUE(dead.ok());
  auto sub = Sub(*worker, "poison", Fast(absl::Seconds(30), 3));
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(pub->PublishConfirmed("poison", "bad", Headers{{"k", "v"}},
                                    kTimeout)
                  .ok());
  for (uint32_t attempt = 1; attempt <= 3; ++attempt) {
    auto m = sub->Next(kTimeout);
    ASSERT_TRUE(m.ok()) << "attempt " << attempt << ": " << m.status();
    EXPECT_EQ(m->attempt(), attempt);
    ASSERT_TRUE(worker->Nack(*m).ok());  // the backoff, 50 ms and up
  }
  auto d = (*dead)->Next(kTimeout);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->topic(), "$sift.deadletter.poison");
  EXPECT_EQ(d->payload(), "bad");
  EXPECT_EQ(d->header("k"), "v");
  EXPECT_EQ(d->header("sift-original-topic"), "poison");
  EXPECT_EQ(d->header("sift-reason"), "max_deliver after nack");
  EXPECT_EQ(d->header("sift-attempts"), "3");
  EXPECT_EQ(sub->Next(absl::Milliseconds(500)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  auto stats = pub->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(Drops(*stats, "dead_lettered"), 1u);
}

// Work queue: a NACKed task goes to the other worker; a worker that
// vanishes with tasks in flight has them redelivered to the other; with
// prefetch 1 a busy worker is skipped, not given a second task.
TEST(AcksTest, WorkQueuesMoveTasksBetweenWorkers) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto a = Connect(siftd->endpoint());
  auto b = Connect(siftd->endpoint());
  ASSERT_NE(b, nullptr);
  AckOptions one = Fast(absl::Seconds(30));
  one.max_in_flight = 1;
  auto sa = Sub(*a, "tasks", one, "workers");
  auto sb = Sub(*b, "tasks", one, "workers");
  ASSERT_NE(sa, nullptr);
  ASSERT_NE(sb, nullptr);

  // Two tasks: one each (prefetch 1), whichever goes first.
  ASSERT_TRUE(pub->PublishConfirmed("tasks", "t1", kTimeout).ok());
  ASSERT_TRUE(pub->PublishConfirmed("tasks", "t2", kTimeout).ok());
  auto ma = sa->Next(kTimeout);
  auto mb = sb->Next(kTimeout);
  ASSERT_TRUE(ma.ok() && mb.ok());
  // A third waits: both are busy.
  ASSERT_TRUE(pub->PublishConfirmed("tasks", "t3", kTimeout).ok());
  EXPECT_EQ(sa->Next(absl::Milliseconds(300)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  // b acks: t3 goes to b.
  ASSERT_TRUE(b->Ack(*mb).ok());
  auto mb3 = sb->Next(kTimeout);
  ASSERT_TRUE(mb3.ok());
  EXPECT_EQ(mb3->payload(), "t3");
  // a nacks its task: with b busy it comes back to a... unless b frees up;
  // b acks first, so the nacked task goes to b (another member).
  ASSERT_TRUE(b->Ack(*mb3).ok());
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_TRUE(a->Nack(*ma, absl::Milliseconds(1)).ok());
  auto moved = sb->Next(kTimeout);
  ASSERT_TRUE(moved.ok()) << moved.status();
  EXPECT_EQ(moved->payload(), ma->payload());
  EXPECT_EQ(moved->attempt(), 2u);

  // b vanishes holding it: a gets it (attempt 3).
  sb.reset();
  b->Close();
  auto rescued = sa->Next(kTimeout);
  ASSERT_TRUE(rescued.ok()) << rescued.status();
  EXPECT_EQ(rescued->payload(), ma->payload());
  EXPECT_EQ(rescued->attempt(), 3u);
  ASSERT_TRUE(a->Ack(*rescued).ok());
}

// Workers of queue group "pool" on `pattern`, prefetch 10, that record
// each task (the payload's number) and acknowledge it.
struct AckingWorkers {
  absl::Mutex mu;
  std::multiset<int> done ABSL_GUARDED_BY(mu);
  int redelivered ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<std::unique_ptr<Subscription>> subs;

  void Start(const std::string& endpoint, const std::string& pattern,
             int count) {
    for (int w = 0; w < count; ++w) {
      clients.push_back(Connect(endpoint));
      ASSERT_NE(clients.back(), nullptr);
      Client* c = clients.back().get();
      SubscribeOptions o;
      AckOptions ack = Fast(absl::Seconds(30));
      ack.max_in_flight = 10;
      o.ack = ack;
      o.queue_group = "pool";
      o.callback = [this, c](const Message& m) {
        int n = 0;
        EXPECT_TRUE(absl::SimpleAtoi(
            absl::string_view(m.payload().data(), m.payload().size()), &n));
        if (c->Ack(m).ok()) {
          absl::MutexLock lock(&mu);
          done.insert(n);
          if (m.attempt() > 1) ++redelivered;
        }
      };
      auto sub = c->Subscribe(pattern, o);
      ASSERT_TRUE(sub.ok()) << sub.status();
      subs.push_back(*std::move(sub));
    }
  }

  // Waits (bounded) until `n` tasks are done, then a little more, so that
  // anything done twice would show.
  void WaitFor(size_t n) {
    const absl::Time deadline = absl::Now() + kTimeout;
    for (;;) {
      {
        absl::MutexLock lock(&mu);
        if (done.size() >= n || absl::Now() > deadline) break;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    absl::SleepFor(absl::Milliseconds(300));
  }
};

// 1,000 tasks over three workers with prefetch 10, each acked once: every
// task is done exactly once, none is redelivered.
TEST(AcksTest, AThousandTasksAreEachDoneOnce) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  AckingWorkers workers;
  workers.Start(siftd->endpoint(), "work", 3);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(pub->Publish("work", absl::StrCat(i)).ok());
  }
  workers.WaitFor(1000);
  absl::MutexLock lock(&workers.mu);
  EXPECT_EQ(workers.done.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(workers.done.count(i), 1u) << i;
  EXPECT_EQ(workers.redelivered, 0);
}

// A work queue of 4 workers, one of which vanishes mid-task (its socket
// closed at once, linger 0, as a SIGKILL leaves it) holding 5 tasks: every
// task is acknowledged exactly once overall, the vanished worker's by the
// others (attempt 2).
TEST(AcksTest, AWorkerKilledMidTaskLosesNothing) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  // The doomed worker: takes up to 5 tasks and never acknowledges them.
  RawDealer doomed(siftd->endpoint());
  ASSERT_TRUE(doomed.Hello().ok());
  wire::Header sub;
  sub.set_request_id(2);
  sub.mutable_sub()->set_sid(1);
  sub.mutable_sub()->set_pattern("jobs");
  sub.mutable_sub()->set_queue_group("pool");
  sub.mutable_sub()->mutable_ack()->set_max_in_flight(5);
  sub.mutable_sub()->mutable_ack()->set_ack_wait_ms(30000);
  // The group's retry policy, as Fast() gives the other members.
  sub.mutable_sub()->mutable_ack()->set_max_deliver(5);
  sub.mutable_sub()->mutable_ack()->set_backoff_initial_ms(50);
  sub.mutable_sub()->mutable_ack()->set_backoff_max_ms(200);
  sub.mutable_sub()->mutable_ack()->set_backoff_jitter(0);
  auto joined = doomed.Call(sub);
  ASSERT_TRUE(joined.ok() && joined->has_ok()) << joined->DebugString();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(pub->Publish("jobs", absl::StrCat(i)).ok());
  }
  int held = 0;
  for (int i = 0; i < 50 && held < 5; ++i) {
    auto r = doomed.Recv(absl::Milliseconds(200));
    if (r && r->header && r->header->has_deliver()) ++held;
  }
  ASSERT_EQ(held, 5);
  AckingWorkers workers;
  workers.Start(siftd->endpoint(), "jobs", 3);
  for (int i = 5; i < 1000; ++i) {
    ASSERT_TRUE(pub->Publish("jobs", absl::StrCat(i)).ok());
  }
  doomed.CloseNow();  // mid-task
  workers.WaitFor(1000);
  absl::MutexLock lock(&workers.mu);
  EXPECT_EQ(workers.done.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(workers.done.count(i), 1u) << i;
  EXPECT_EQ(workers.redelivered, 5);  // the vanished worker's five
}

// An ACK of an id that is not in flight (twice, or made up) gets
// UNKNOWN_DELIVERY with the command's request_id; a bad policy is refused.
TEST(AcksTest, UnknownDeliveriesAndBadPoliciesAreErrors) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  RawDealer raw(siftd->endpoint());
  ASSERT_TRUE(raw.Hello().ok());
  wire::Header ack;
  ack.set_request_id(9);
  ack.mutable_ack()->add_delivery_ids(424242);
  auto reply = raw.Call(ack);
  ASSERT_TRUE(reply.ok() && reply->has_error());
  EXPECT_EQ(reply->error().code(), wire::UNKNOWN_DELIVERY);
  EXPECT_EQ(reply->request_id(), 9u);

  wire::Header sub = SubHeader(10, 1, "x");
  sub.mutable_sub()->mutable_ack()->set_max_in_flight(0);
  reply = raw.Call(sub);
  ASSERT_TRUE(reply.ok() && reply->has_error()) << reply->DebugString();
  EXPECT_EQ(reply->error().code(), wire::INVALID_REQUEST);
  // The sid was not taken: the same SUB with a good policy succeeds.
  sub.set_request_id(11);
  sub.mutable_sub()->mutable_ack()->set_max_in_flight(5);
  reply = raw.Call(sub);
  ASSERT_TRUE(reply.ok() && reply->has_ok()) << reply->DebugString();
}

// An ACK whose list names, after a delivery's id, the id that delivery's
// freed slot is about to hand the next queued message (ids are sequential,
// so a hostile client can guess it): both are acknowledged, and the broker
// sends no DELIVER for the second (its delivery ended before it was sent),
// keeps running, and serves the next message as usual.
TEST(AcksTest, AnAckOfTheIdItsOwnAckHandsOutIsAppliedAndNotSent) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  RawDealer raw(siftd->endpoint());
  ASSERT_TRUE(raw.Hello().ok());
  wire::Header sub = SubHeader(2, 1, "jobs");
  sub.mutable_sub()->mutable_ack()->set_max_in_flight(1);
  auto joined = raw.Call(sub);
  ASSERT_TRUE(joined.ok() && joined->has_ok()) << joined->DebugString();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pub->Publish("jobs", absl::StrCat("m", i)).ok());
  }
  std::optional<RawReply> first;
  for (int i = 0; i < 50 && !first; ++i) {
    auto r = raw.Recv(absl::Milliseconds(100));
    if (r && r->header && r->header->has_deliver()) first = std::move(r);
  }
  ASSERT_TRUE(first.has_value());
  ASSERT_EQ(first->frames.size(), 2u);
  EXPECT_EQ(first->frames[1], "m0");
  const uint64_t id = first->header->deliver().delivery_id();
  wire::Header ack;
  ack.set_request_id(3);
  ack.mutable_ack()->add_delivery_ids(id);
  ack.mutable_ack()->add_delivery_ids(id + 1);  // m1's, not yet sent
  raw.Send(ack);
  // m1 was acknowledged without being delivered: m2 comes (around the OK),
  // and nothing else.
  bool ok = false;
  std::vector<std::string> delivered;
  for (int i = 0; i < 10; ++i) {
    auto r = raw.Recv(absl::Milliseconds(300));
    if (!r) break;
    if (r->header && r->header->has_ok()) ok = r->header->request_id() == 3;
    if (r->header && r->header->has_deliver()) {
      delivered.push_back(r->frames[1]);
      EXPECT_EQ(r->header->deliver().delivery_id(), id + 2);
    }
  }
  EXPECT_TRUE(ok);
  EXPECT_EQ(delivered, std::vector<std::string>{"m2"});
  auto stats = raw.Call(StatsHeader(4));
  ASSERT_TRUE(stats.ok() && stats->has_stats_reply()) << stats->DebugString();
  const wire::DeliveryCounts& counts = stats->stats_reply().deliveries();
  EXPECT_EQ(counts.acks(), 2u);
  EXPECT_EQ(counts.delivered(), 3u);  // m1's delivery was made, not sent
  EXPECT_EQ(counts.in_flight(), 1u);
  EXPECT_TRUE(siftd->IsRunning());
}

// siftd's resident memory in bytes (VmRSS), or 0 if unknown.
int64_t ResidentBytes(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view rest = line;
    int64_t kb = 0;
    if (absl::ConsumePrefix(&rest, "VmRSS:") &&
        absl::SimpleAtoi(
            absl::StripSuffix(absl::StripAsciiWhitespace(rest), " kB"), &kb)) {
      return kb << 10;
    }
  }
  return 0;
}

// Messages held for a consumer outside MessageArena (here: over its 64 KiB
// block size) live on the heap, which keeps what is freed for reuse; once
// they are acknowledged and the broker holds next to nothing, siftd gives
// that memory back (within a few seconds: its once-a-second housekeeping).
TEST(AcksTest, HeapKeptMessagesGiveTheirMemoryBackOnceAcked) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  constexpr int kCount = 2000;
  const std::string payload(100 << 10, 'm');  // 200 MB in all
  ClientOptions options;
  options.endpoint = siftd->endpoint();
  options.subscription_queue_max_messages = kCount;
  options.subscription_queue_max_bytes = size_t{1} << 30;
  auto client = Client::Connect(options);
  ASSERT_TRUE(client.ok()) << client.status();
  AckOptions ack = Fast(absl::Minutes(10));
  ack.max_in_flight = kCount;
  auto sub = Sub(**client, "big", ack);
  ASSERT_NE(sub, nullptr);
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE((*client)->Publish("big", payload).ok());
  }
  std::vector<Message> held;
  for (int i = 0; i < kCount; ++i) {
    auto m = sub->Next(absl::Seconds(30));
    ASSERT_TRUE(m.ok()) << i << ": " << m.status();
    held.push_back(*std::move(m));
  }
  const int64_t holding = ResidentBytes(siftd->pid());
  EXPECT_GT(holding, int64_t{200} << 20);
  for (const Message& m : held) ASSERT_TRUE((*client)->Ack(m).ok());
  ASSERT_TRUE((*client)->Flush().ok());
  int64_t after = holding;
  for (int i = 0; i < 100 && after > holding - (int64_t{150} << 20); ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    after = ResidentBytes(siftd->pid());
  }
  EXPECT_LT(after, holding - (int64_t{150} << 20))
      << "siftd kept " << (after >> 20) << " MiB of " << (holding >> 20);
}

// A declared work queue keeps what is published before any worker
// subscribes, and while none is connected; a worker that joins gets it all,
// in order. Without the declaration the same publish has no subscriber.
TEST(AcksTest, DeclaredQueuesHoldMessagesUntilAWorkerComes) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  ASSERT_NE(pub, nullptr);
  AckOptions ack = Fast(absl::Seconds(30));
  ASSERT_TRUE(pub->Declare("jobs.>", "pool", ack).ok());
  ASSERT_TRUE(pub->Declare("jobs.>", "pool", ack).ok());  // idempotent
  {  // other group settings for the same queue: refused, the first stands,
     // naming each setting that differs with both values
    AckOptions other = ack;
    other.max_queued = ack.max_queued.value_or(100000) + 1;
    absl::Status s = pub->Declare("jobs.>", "pool", other);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_EQ(s.message(),
              "queue group \"pool\" on \"jobs.>\" was declared with "
              "max_queued 100000 (this declaration: 100001): the first "
              "declaration stands");
    other = ack;
    other.max_deliver = 3;
    other.backoff_jitter.reset();  // the default, 0.2
    s = pub->Declare("jobs.>", "pool", other);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_EQ(s.message(),
              "queue group \"pool\" on \"jobs.>\" was declared with "
              "max_deliver 5 (this declaration: 3) and backoff_jitter 0 "
              "(this declaration: 0.2, the default): the first declaration "
              "stands");
  }
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(pub->PublishConfirmed("jobs.x", absl::StrCat(i), kTimeout).ok());
  }
  ASSERT_TRUE(pub->PublishConfirmed("other", "lost", kTimeout).ok());
  auto stats = pub->Stats();
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(Drops(*stats, "no_subscribers"), 1u);  // only "other"
  EXPECT_EQ(stats->deliveries().queued(), 5u);

  auto worker = Connect(siftd->endpoint());
  ASSERT_NE(worker, nullptr);
  auto sub = Sub(*worker, "jobs.>", ack, "pool");
  ASSERT_NE(sub, nullptr);
  for (int i = 0; i < 5; ++i) {
    auto m = sub->Next(kTimeout);
    ASSERT_TRUE(m.ok()) << i << ": " << m.status();
    EXPECT_EQ(m->payload(), absl::StrCat(i));
    ASSERT_TRUE(worker->Ack(*m).ok());
  }
  // The worker leaves; more work waits for the next one.
  sub.reset();
  worker->Close();
  ASSERT_TRUE(pub->PublishConfirmed("jobs.y", "later", kTimeout).ok());
  auto next = Connect(siftd->endpoint());
  ASSERT_NE(next, nullptr);
  auto sub2 = Sub(*next, "jobs.>", ack, "pool");
  ASSERT_NE(sub2, nullptr);
  auto m = sub2->Next(kTimeout);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->payload(), "later");
  // A group declared without one: refused.
  EXPECT_FALSE(pub->Declare("x", "", ack).ok());
}

// A work queue holding max_queued messages waiting refuses more: the
// message is dead-lettered for it and its publisher gets QUEUE_FULL.
TEST(AcksTest, AFullWorkQueueToldThePublisher) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto pub = Connect(siftd->endpoint());
  auto worker = Connect(siftd->endpoint());
  ASSERT_NE(worker, nullptr);
  AckOptions ack = Fast(absl::Seconds(30));
  ack.max_in_flight = 1;
  ack.max_queued = 1;
  auto sub = Sub(*worker, "q", ack, "small");
  ASSERT_NE(sub, nullptr);
  ASSERT_TRUE(pub->PublishConfirmed("q", "1", kTimeout).ok());  // in flight
  ASSERT_TRUE(pub->PublishConfirmed("q", "2", kTimeout).ok());  // waits
  absl::Status s = pub->PublishConfirmed("q", "3", kTimeout);
  EXPECT_EQ(protocol::WireCodeOf(s), wire::QUEUE_FULL) << s;
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace sift::test
