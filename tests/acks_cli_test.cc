// Explicit acks through the `sift` command against a real siftd: sub --ack
// with the ack-policy flags (--max-deliver, --backoff-*, --max-in-flight,
// ...), --nack and --nack-delay driving redeliveries and dead letters, a
// queue group refusing a member whose policy differs, fetch --nack, and
// what sub --ack says of acks that got no answer or were never sent.
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "broker/protocol/codec.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "proto/sift.pb.h"
#include "tests/harness.h"
#include "tests/siftd_process.h"
#include "tests/test_util.h"

namespace sift::test {
namespace {

constexpr absl::Duration kTimeout = absl::Seconds(20);

// Starts `sift --server=<siftd> args...` with its output in a new file.
struct Running {
  pid_t pid;
  std::string out;
};
Running StartSift(const SiftdProcess& siftd, std::vector<std::string> args) {
  static int runs = 0;
  Running r{-1, absl::StrCat(TestTmpDir(), "/acks-cli-", getpid(), "-",
                             ++runs, ".txt")};
  std::vector<std::string> argv = {SiftCliPath(),
                                   absl::StrCat("--server=", siftd.endpoint())};
  argv.insert(argv.end(), args.begin(), args.end());
  r.pid = Spawn(argv, r.out);
  EXPECT_GT(r.pid, 0);
  return r;
}

// siftd with a stream "jobs" on "jobs.>" (fsync never), or null.
std::unique_ptr<SiftdProcess> StartWithJobsStream() {
  auto siftd = StartSiftdWithStreams();
  if (siftd == nullptr) return nullptr;
  Running add = StartSift(*siftd, {"stream", "add", "jobs", "--subjects",
                                   "jobs.>", "--fsync", "never"});
  if (Reap(add.pid, kTimeout) != 0) {
    ADD_FAILURE() << "stream add: " << ReadFile(add.out);
    return nullptr;
  }
  return siftd;
}

// Waits (bounded) until the broker has `n` explicit-ack subscriptions.
bool WaitForConsumers(Client& client, uint64_t n) {
  return PollUntil(kTimeout, [&] {
    absl::StatusOr<BrokerStats> stats = client.Stats(kTimeout);
    return stats.ok() && stats->deliveries().consumers() == n;
  });
}

// `sift --server=<siftd> --connect_timeout=2s ARGS` started with its stdout
// read only once Release() is called: printing more than the pipe holds
// (64 KiB) blocks it, and what comes after waits in its client library's
// queue. Its stdout, stderr, pid and exit status go to files in a new test
// directory. For the tests of what sift does while it cannot print.
class HeldSift {
 public:
  HeldSift(const SiftdProcess& siftd, const std::string& args)
      : dir_(NewTestDir("held-")) {
    const std::string sift =
        absl::StrCat("\"$0\" --server=", siftd.endpoint(),
                     " --connect_timeout=2s ", args);
    shell_ = Spawn(
        {"/bin/sh", "-c",
         absl::StrCat("(", sift, " 2>\"$1/err\" & echo $! >\"$1/pid\"; ",
                      "wait $!; echo $? >\"$1/rc\") | ",
                      "(while [ ! -e \"$1/go\" ]; do sleep 0.02; done; ",
                      "cat >\"$1/out\")"),
         SiftCliPath(), dir_},
        dir_ + "/sh.txt");
    EXPECT_FALSE(dir_.empty());
    EXPECT_GT(shell_, 0);
  }

  // sift's own pid (0 until the shell wrote it).
  pid_t pid() const {
    int pid = 0;
    return absl::SimpleAtoi(
               absl::StripAsciiWhitespace(ReadFile(dir_ + "/pid")), &pid)
               ? pid
               : 0;
  }
  // Lets its stdout be read from now on.
  void Release() const {
    FILE* go = std::fopen((dir_ + "/go").c_str(), "w");
    ASSERT_NE(go, nullptr);
    std::fclose(go);
  }
  std::string out() const { return ReadFile(dir_ + "/out"); }
  std::string err() const { return ReadFile(dir_ + "/err"); }
  // Its exit status as the shell wrote it, "" while it runs.
  std::string rc() const {
    return std::string(absl::StripAsciiWhitespace(ReadFile(dir_ + "/rc")));
  }
  // Waits (bounded) for the shell, once sift has exited and been released;
  // its exit code, or -1 (killed) on timeout.
  int Reap() {
    const int code = ::sift::test::Reap(shell_, kTimeout);
    shell_ = -1;
    return code;
  }
  ~HeldSift() {
    if (shell_ > 0) {  // a test that failed early: end it all
      if (const pid_t p = pid(); p > 0) kill(p, SIGKILL);
      Release();
      Reap();
    }
  }

 private:
  const std::string dir_;
  pid_t shell_ = -1;
};

// Waits (bounded) until the broker has written everything it queued for
// its clients to their connections (STATS pending_bytes 0).
bool WaitUntilWritten(Client& client) {
  const absl::Time deadline = absl::Now() + kTimeout;
  while (absl::Now() < deadline) {
    absl::StatusOr<BrokerStats> stats = client.Stats(kTimeout);
    if (!stats.ok()) return false;
    if (stats->pending_bytes() == 0) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return false;
}

// Freezes siftd (SIGSTOP), as a broker whose host has gone: `client` has
// the same heartbeat as sift's, so once its call fails with the lost
// connection, and 2 s more, sift's session has ended too.
void SilenceBroker(const SiftdProcess& siftd, Client& client) {
  ASSERT_EQ(kill(siftd.pid(), SIGSTOP), 0);
  const absl::Status lost = client.Stats(kTimeout).status();
  EXPECT_TRUE(absl::IsUnavailable(lost)) << lost;
  absl::SleepFor(absl::Seconds(2));
}

// Waits (bounded) until `done` holds.
template <typename Done>
bool WaitFor(Done done) {
  return PollUntil(kTimeout, done);
}

// --nack refuses every delivery: the message comes again after the backoff
// the flags set (20 ms, no jitter), --max-deliver times, then goes to the
// dead-letter topic with the attempts the flag allowed.
TEST(AcksCliTest, NackRedeliversUpToMaxDeliverThenDeadLetters) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  auto dead = client->Subscribe("$sift.deadletter.>");
  ASSERT_TRUE(dead.ok()) << dead.status();

  Running sub = StartSift(
      *siftd, {"sub", "jobs.poison", "--ack", "--nack", "--max-deliver", "3",
               "--backoff-initial", "20ms", "--backoff-jitter", "0",
               "--ack-wait", "30s", "--max-in-flight", "5", "--count", "3",
               "--timeout", "15s"});
  ASSERT_GT(sub.pid, 0);
  ASSERT_TRUE(WaitForConsumers(*client, 1)) << ReadFile(sub.out);
  ASSERT_TRUE(client->PublishConfirmed("jobs.poison", "bad", kTimeout).ok());

  EXPECT_EQ(Reap(sub.pid, kTimeout), 0) << ReadFile(sub.out);
  EXPECT_EQ(ReadFile(sub.out),
            "[jobs.poison] bad\n[jobs.poison] bad\n[jobs.poison] bad\n");
  absl::StatusOr<Message> d = (*dead)->Next(kTimeout);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->topic(), "$sift.deadletter.jobs.poison");
  EXPECT_EQ(d->payload(), "bad");
  EXPECT_EQ(d->header("sift-reason"), "max_deliver after nack");
  EXPECT_EQ(d->header("sift-attempts"), "3");
  absl::StatusOr<BrokerStats> stats = client->Stats(kTimeout);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->deliveries().nacks(), 3u);
  EXPECT_EQ(stats->deliveries().redeliveries(), 2u);
  EXPECT_EQ(stats->deliveries().acks(), 0u);
}

// --nack-delay: the redelivery comes after the delay given, not after the
// backoff (set to 20 s here, so the run would time out on it).
TEST(AcksCliTest, NackDelayTimesTheRedelivery) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  Running sub = StartSift(
      *siftd, {"sub", "jobs.later", "--ack", "--nack-delay", "400ms",
               "--backoff-initial", "20s", "--backoff-max", "20s",
               "--max-deliver", "2", "--count", "2", "--timeout", "10s"});
  ASSERT_GT(sub.pid, 0);
  ASSERT_TRUE(WaitForConsumers(*client, 1)) << ReadFile(sub.out);
  const absl::Time published = absl::Now();
  ASSERT_TRUE(client->PublishConfirmed("jobs.later", "x", kTimeout).ok());
  EXPECT_EQ(Reap(sub.pid, kTimeout), 0) << ReadFile(sub.out);
  EXPECT_GE(absl::Now() - published, absl::Milliseconds(400));
  EXPECT_EQ(ReadFile(sub.out), "[jobs.later] x\n[jobs.later] x\n");
}

// Without --nack each message is acknowledged once printed: nothing comes
// again, whatever the ack wait.
TEST(AcksCliTest, AckAcknowledgesEachMessage) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  Running sub = StartSift(*siftd, {"sub", "jobs.ok", "--ack", "--ack-wait",
                                   "200", "--max-in-flight", "1", "--count",
                                   "2", "--timeout", "15s"});
  ASSERT_GT(sub.pid, 0);
  ASSERT_TRUE(WaitForConsumers(*client, 1)) << ReadFile(sub.out);
  ASSERT_TRUE(client->PublishConfirmed("jobs.ok", "a", kTimeout).ok());
  ASSERT_TRUE(client->PublishConfirmed("jobs.ok", "b", kTimeout).ok());
  EXPECT_EQ(Reap(sub.pid, kTimeout), 0) << ReadFile(sub.out);
  EXPECT_EQ(ReadFile(sub.out), "[jobs.ok] a\n[jobs.ok] b\n");
  absl::SleepFor(absl::Milliseconds(400));  // past the 200 ms ack wait
  absl::StatusOr<BrokerStats> stats = client->Stats(kTimeout);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->deliveries().acks(), 2u);
  EXPECT_EQ(stats->deliveries().expired(), 0u);
  EXPECT_EQ(stats->deliveries().redeliveries(), 0u);
}

// A fire-and-forget `sift pub` whose messages the broker refuses (here a
// full work queue: QUEUE_FULL) says so and exits 1, instead of "published".
TEST(AcksCliTest, PubWithoutConfirmReportsRefusedMessages) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto worker = Connect(siftd->endpoint());
  ASSERT_NE(worker, nullptr);
  SubscribeOptions options;
  options.queue_group = "small";
  options.ack = AckOptions{};
  options.ack->max_in_flight = 1;
  options.ack->max_queued = 1;
  auto sub = worker->Subscribe("q", options);
  ASSERT_TRUE(sub.ok()) << sub.status();
  Running pub = StartSift(*siftd, {"pub", "q", "m{n}", "--count", "5"});
  ASSERT_GT(pub.pid, 0);
  EXPECT_EQ(Reap(pub.pid, kTimeout), 1) << ReadFile(pub.out);
  const std::string out = ReadFile(pub.out);
  // One in flight, one queued, three refused.
  EXPECT_NE(out.find("the broker refused 3 of 5 messages to q"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("queue"), std::string::npos) << out;
  EXPECT_EQ(out.find("published"), std::string::npos) << out;
  // The client library counts them (Client::async_errors).
  auto pub2 = Connect(siftd->endpoint());
  ASSERT_NE(pub2, nullptr);
  ASSERT_TRUE(pub2->Publish("q", "again").ok());
  ASSERT_TRUE(pub2->Flush(kTimeout).ok());
  EXPECT_EQ(pub2->async_errors(), 1u);
  EXPECT_EQ(protocol::WireCodeOf(pub2->last_async_error()), wire::QUEUE_FULL)
      << pub2->last_async_error();
}

// `sift pub --file` of something it cannot read through (a directory
// opens, then reads fail with EISDIR) is an error, exit 1, not an empty
// message published.
TEST(AcksCliTest, PubFileThatCannotBeReadPublishesNothing) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto watcher = Connect(siftd->endpoint());
  ASSERT_NE(watcher, nullptr);
  auto sub = watcher->Subscribe("fx");
  ASSERT_TRUE(sub.ok()) << sub.status();
  const std::string dir = NewTestDir("pubdir-");
  ASSERT_FALSE(dir.empty());
  Running pub = StartSift(*siftd, {"pub", "fx", "--file", dir});
  ASSERT_GT(pub.pid, 0);
  EXPECT_EQ(Reap(pub.pid, kTimeout), 1) << ReadFile(pub.out);
  const std::string out = ReadFile(pub.out);
  EXPECT_TRUE(absl::StrContains(out, "sift: cannot read ")) << out;
  EXPECT_TRUE(absl::StrContains(out, "Is a directory")) << out;
  EXPECT_FALSE(absl::StrContains(out, "published")) << out;
  ASSERT_TRUE(watcher->Flush(kTimeout).ok());
  auto got = (*sub)->Next(absl::Milliseconds(300));
  EXPECT_FALSE(got.ok()) << "a message was published: \""
                         << (got.ok() ? std::string(got->payload()) : "")
                         << "\"";
}

// With no broker at --server, sift says so after --connect_timeout (exit 1)
// and names the likely causes: ZeroMQ retries a refused connection quietly,
// so that is all it can tell.
TEST(AcksCliTest, NoBrokerAtTheEndpointIsSaid) {
  absl::StatusOr<int> port = PickFreePort();
  ASSERT_TRUE(port.ok()) << port.status();
  const std::string endpoint = absl::StrCat("tcp://127.0.0.1:", *port);
  const std::string out = absl::StrCat(NewTestDir("nobroker-"), "/out.txt");
  const pid_t pid = Spawn({SiftCliPath(), "--server=" + endpoint,
                           "--connect_timeout=300ms", "stream", "ls"},
                          out);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(Reap(pid, kTimeout), 1) << ReadFile(out);
  EXPECT_EQ(ReadFile(out),
            absl::StrCat("sift: cannot connect to ", endpoint,
                         ": no answer within 300ms (is siftd running there? "
                         "check --server, or give it longer with "
                         "--connect_timeout)\n"));
}

// An ipc:// path with no socket file is named: that much can be told.
TEST(AcksCliTest, NoSocketFileAtAnIpcEndpointIsSaid) {
  const std::string dir = NewTestDir("noipc-");
  const std::string out = absl::StrCat(dir, "/out.txt");
  // Under /tmp: an ipc:// path is at most 107 bytes (sun_path), and the
  // test's own directory may be longer ("File name too long").
  char short_dir[] = "/tmp/sift-noipc-XXXXXX";
  ASSERT_NE(mkdtemp(short_dir), nullptr);
  const std::string path = absl::StrCat(short_dir, "/nobody.sock");
  const pid_t pid = Spawn({SiftCliPath(), "--server=ipc://" + path,
                           "--connect_timeout=300ms", "stats"},
                          out);
  ASSERT_GT(pid, 0);
  EXPECT_EQ(Reap(pid, kTimeout), 1) << ReadFile(out);
  EXPECT_EQ(
      ReadFile(out),
      absl::StrCat("sift: cannot connect to ipc://", path,
                   ": no answer within 300ms: there is no socket file ", path,
                   " (No such file or directory); is siftd running "
                   "there? check --server, or give it longer with "
                   "--connect_timeout\n"));
  rmdir(short_dir);
}

// SIGINT stops `sift sub` even while it is blocked writing to a stdout
// nobody reads: after a 1 s grace (plus --connect_timeout with --ack) it
// exits 130 with a line on stderr. Before, it stayed until the reader went
// away (then died of SIGPIPE, 141), SIGTERM too.
TEST(AcksCliTest, ASignalStopsSubEvenWithItsOutputBlocked) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  HeldSift sift(*siftd, "sub 'h.>'");
  // Once sift has subscribed (the test's client holds none).
  ASSERT_TRUE(WaitFor([&] {
    absl::StatusOr<BrokerStats> stats = client->Stats(kTimeout);
    return stats.ok() && stats->subscriptions() == 1;
  })) << sift.err();
  const std::string payload(300, 'x');
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(client->Publish("h.x", payload).ok());
  }
  ASSERT_TRUE(client->Flush(kTimeout).ok());
  absl::SleepFor(absl::Seconds(1));  // sift fills the pipe and blocks
  ASSERT_GT(sift.pid(), 0);
  ASSERT_EQ(kill(sift.pid(), SIGINT), 0);
  WaitFor([&] { return !sift.rc().empty(); });
  const std::string rc = sift.rc();
  sift.Release();
  EXPECT_EQ(sift.Reap(), 0);
  EXPECT_EQ(rc, "130");
  EXPECT_EQ(sift.err(),
            "sift: stopped at once (still stopping after 1s: its output was "
            "not being read)\n");
}


// An endpoint the client refuses outright is said once ("cannot connect
// to" was doubled), and `pub --file -` with stdin closed reads nothing
// (descriptor 0 was then one of ZeroMQ's: "Resource temporarily
// unavailable").
TEST(AcksCliTest, BadEndpointAndClosedStdinAreSaidPlainly) {
  const std::string dir = NewTestDir("plain-");
  ASSERT_FALSE(dir.empty());
  const pid_t bogus = Spawn({SiftCliPath(), "--server=bogus", "stats"},
                            dir + "/bogus.txt");
  ASSERT_GT(bogus, 0);
  EXPECT_EQ(Reap(bogus, kTimeout), 2);  // a usage error, as --server=''
  EXPECT_EQ(ReadFile(dir + "/bogus.txt"),
            "sift: cannot connect to \"bogus\": not an endpoint (no "
            "transport://) (endpoints look like tcp://127.0.0.1:7440 or "
            "ipc:///path)\n");
  // A tcp:// port ZeroMQ would take and retry until --connect_timeout
  // (here 20 s) is refused at once.
  for (const auto& [server, problem] :
       std::vector<std::pair<std::string, std::string>>{
           {"tcp://127.0.0.1:99999", "port 99999 is out of range (1 to 65535)"},
           {"tcp://127.0.0.1:0", "port 0 is out of range (1 to 65535)"},
           {"tcp://127.0.0.1:74x0", "port \"74x0\" is not a number from 1 "
                                    "to 65535"},
           {"tcp://127.0.0.1", "no port (tcp://HOST:PORT)"},
           {"tcp://:7440", "no host (tcp://HOST:PORT)"},
       }) {
    const absl::Time start = absl::Now();
    const pid_t p = Spawn({SiftCliPath(), "--server=" + server,
                           "--connect_timeout=20s", "stats"},
                          dir + "/port.txt");
    ASSERT_GT(p, 0);
    EXPECT_EQ(Reap(p, kTimeout), 2) << server;
    EXPECT_LT(absl::Now() - start, absl::Seconds(10)) << server;
    EXPECT_EQ(
        ReadFile(dir + "/port.txt"),
        absl::StrCat("sift: cannot connect to \"", server, "\": ", problem,
                     " (endpoints look like tcp://127.0.0.1:7440 or "
                     "ipc:///path)\n"));
  }
  // inproc:// cannot reach siftd from sift's own process.
  const pid_t in = Spawn({SiftCliPath(), "--server=inproc://siftd",
                          "--connect_timeout=20s", "stats"},
                         dir + "/inproc.txt");
  ASSERT_GT(in, 0);
  EXPECT_EQ(Reap(in, absl::Seconds(10)), 2);
  EXPECT_EQ(ReadFile(dir + "/inproc.txt"),
            "sift: cannot connect to \"inproc://siftd\": inproc:// reaches "
            "only a broker embedded in the same process, and sift runs in "
            "its own (use tcp:// or ipc://)\n");

  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto watcher = Connect(siftd->endpoint());
  ASSERT_NE(watcher, nullptr);
  auto sub = watcher->Subscribe("fc");
  ASSERT_TRUE(sub.ok()) << sub.status();
  const pid_t closed = Spawn(
      {"/bin/sh", "-c",
       absl::StrCat("exec \"$0\" --server=", siftd->endpoint(),
                    " pub fc --file - <&-"),
       SiftCliPath()},
      dir + "/closed.txt");
  ASSERT_GT(closed, 0);
  EXPECT_EQ(Reap(closed, kTimeout), 1);
  EXPECT_EQ(ReadFile(dir + "/closed.txt"),
            "sift: cannot read stdin (--file -): it is closed\n");
  ASSERT_TRUE(watcher->Flush(kTimeout).ok());
  EXPECT_FALSE((*sub)->Next(absl::Milliseconds(300)).ok());
}

// pub --file reads at most the broker's max_payload_bytes (+1 to know it is
// more): /dev/zero is refused with the limit, not read until memory runs
// out (under a 2 GB address-space limit it aborted with std::bad_alloc,
// exit 134, before); a file of exactly the limit is published.
TEST(AcksCliTest, PubFileReadsNoMoreThanTheBrokerTakes) {
  auto siftd = StartSiftd({"--max_payload_bytes=4096"});
  ASSERT_NE(siftd, nullptr);
  auto watcher = Connect(siftd->endpoint());
  ASSERT_NE(watcher, nullptr);
  auto sub = watcher->Subscribe("fz");
  ASSERT_TRUE(sub.ok()) << sub.status();
  const std::string dir = NewTestDir("pubzero-");
  ASSERT_FALSE(dir.empty());
  const pid_t zero = Spawn(
      {"/bin/sh", "-c",
       absl::StrCat("ulimit -v 2000000; exec \"$0\" --server=",
                    siftd->endpoint(), " pub fz --file /dev/zero"),
       SiftCliPath()},
      dir + "/zero.txt");
  ASSERT_GT(zero, 0);
  EXPECT_EQ(Reap(zero, kTimeout), 1) << ReadFile(dir + "/zero.txt");
  EXPECT_EQ(ReadFile(dir + "/zero.txt"),
            "sift: cannot publish /dev/zero: more than the broker's "
            "max_payload_bytes (4096 bytes); nothing was published\n");

  const std::string exact = dir + "/exact";
  FILE* f = std::fopen(exact.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  const std::string payload(4096, 'z');
  ASSERT_EQ(std::fwrite(payload.data(), 1, payload.size(), f),
            payload.size());
  ASSERT_EQ(std::fclose(f), 0);
  Running pub = StartSift(*siftd, {"pub", "fz", "--file", exact});
  ASSERT_GT(pub.pid, 0);
  EXPECT_EQ(Reap(pub.pid, kTimeout), 0) << ReadFile(pub.out);
  auto got = (*sub)->Next(kTimeout);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->payload(), payload);
  EXPECT_FALSE((*sub)->Next(absl::Milliseconds(300)).ok())
      << "/dev/zero published something";
}

// `sift pub --confirm` keeps up to --window confirms awaited and still
// names the first message refused (here by a full work queue: QUEUE_FULL),
// exit 1; with a window it also says what became of those sent after it.
TEST(AcksCliTest, PubConfirmNamesTheFirstRefusedMessage) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto worker = Connect(siftd->endpoint());
  ASSERT_NE(worker, nullptr);
  std::vector<std::unique_ptr<Subscription>> subs;
  for (const std::string window : {"1", "256"}) {
    SCOPED_TRACE(absl::StrCat("--window ", window));
    const std::string topic = absl::StrCat("q", window);
    SubscribeOptions options;
    options.queue_group = "small";
    options.ack = AckOptions{};
    options.ack->max_in_flight = 1;
    options.ack->max_queued = 1;
    auto sub = worker->Subscribe(topic, options);
    ASSERT_TRUE(sub.ok()) << sub.status();
    subs.push_back(*std::move(sub));
    Running pub = StartSift(*siftd, {"pub", topic, "m{n}", "--count", "5",
                                     "--confirm", "--window", window});
    ASSERT_GT(pub.pid, 0);
    EXPECT_EQ(Reap(pub.pid, kTimeout), 1) << ReadFile(pub.out);
    const std::string out = ReadFile(pub.out);
    EXPECT_EQ(out.find("published 5"), std::string::npos) << out;
    EXPECT_NE(out.find("max_queued"), std::string::npos) << out;
    const std::string prefix =
        absl::StrCat("sift: publish to ", topic, " failed after ");
    ASSERT_TRUE(absl::StartsWith(out, prefix)) << out;
    int ok_before = -1;
    ASSERT_TRUE(absl::SimpleAtoi(out.substr(prefix.size(), 1), &ok_before))
        << out;
    if (window == "1") {
      // One at a time: one in flight, one queued, the third refused, and
      // nothing sent after it.
      EXPECT_EQ(ok_before, 2) << out;
      EXPECT_EQ(out.find("sent after it"), std::string::npos) << out;
      continue;
    }
    // The five go out without waiting: the queue takes one or two (as the
    // first reaches the worker before the second comes, or not), the first
    // refused is named, and those sent after it before its answer came
    // (in practice all the rest) are counted: refused too.
    EXPECT_TRUE(ok_before == 1 || ok_before == 2) << out;
    const size_t note = out.find("; of the ");
    if (note == std::string::npos) continue;  // the answer came first
    int after = -1;
    ASSERT_TRUE(absl::SimpleAtoi(out.substr(note + 9, 1), &after)) << out;
    EXPECT_TRUE(after >= 1 && after <= 5 - ok_before - 1) << out;
    EXPECT_NE(out.find(absl::StrCat(after == 1 ? " message" : " messages",
                                    " sent after it before its answer "
                                    "came, 0 published, ",
                                    after, " refused\n")),
              std::string::npos)
        << out;
  }
}

// Waits (bounded) until stream `name` holds at least `n` messages.
bool WaitForStreamMessages(Client& client, const std::string& name,
                           uint64_t n) {
  return PollUntil(kTimeout, [&] {
    absl::StatusOr<StreamInfo> info = client.GetStreamInfo(name, kTimeout);
    return info.ok() && info->messages >= n;
  });
}

// A broker that stops answering in the middle of a long `sift pub
// --confirm`: the client's heartbeat declares the connection lost and every
// confirm awaited fails with Unavailable (or, queued and never sent, with
// DeadlineExceeded). The broker did not refuse those messages; it may have
// stored them. sift used to count them as refused ("0 published, 255
// refused"); it counts them apart, as messages with no answer.
TEST(AcksCliTest, PubConfirmDoesNotCountUnansweredMessagesAsRefused) {
  auto siftd = StartWithJobsStream();
  ASSERT_NE(siftd, nullptr);
  Running pub = StartSift(
      *siftd, {"pub", "jobs.bulk", "m{n}", "--count", "2000000", "--confirm",
               "--window", "256", "--msg-id", "bulk-{n}"});
  ASSERT_GT(pub.pid, 0);
  {
    auto client = Connect(siftd->endpoint());
    ASSERT_NE(client, nullptr);
    ASSERT_TRUE(WaitForStreamMessages(*client, "jobs", 2000))
        << ReadFile(pub.out);
  }
  ASSERT_EQ(kill(siftd->pid(), SIGSTOP), 0);
  const int rc = Reap(pub.pid, kTimeout);
  ASSERT_EQ(kill(siftd->pid(), SIGKILL), 0);
  const std::string out = ReadFile(pub.out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_TRUE(absl::StartsWith(out, "sift: publish to jobs.bulk failed after "))
      << out;
  EXPECT_TRUE(absl::StrContains(
      out, "the message may or may not have been routed or stored; of the "))
      << out;
  EXPECT_TRUE(
      absl::StrContains(out, " with no answer (the connection was lost"))
      << out;
  EXPECT_TRUE(absl::StrContains(
      out,
      "they may or may not have been routed or stored; republish with "
      "the same --msg-id to a stream to be sure)\n"))
      << out;
  EXPECT_FALSE(absl::StrContains(out, "refused")) << out;
}

// `sift sub --ack` whose broker stops answering (SIGSTOP, longer than the
// client's 3 s heartbeat timeout) while an acknowledgement awaits its
// answer, and is then killed and restarted: the ack fails with Unavailable,
// its outcome unknown. sift used to exit 1 on it ("acknowledging ...
// failed"); it counts it as unsettled, as it does the messages of the ended
// session, and goes on printing after the reconnect.
TEST(AcksCliTest, SubAckGoesOnAcrossALostConnection) {
  auto siftd = StartWithJobsStream();
  ASSERT_NE(siftd, nullptr);
  {
    // Enough records that sift is acknowledging one when the broker stops.
    auto client = Connect(siftd->endpoint());
    ASSERT_NE(client, nullptr);
    for (int i = 1; i <= 5000; ++i) {
      ASSERT_TRUE(client->Publish("jobs.before", absl::StrCat("b", i)).ok());
    }
    ASSERT_TRUE(WaitForStreamMessages(*client, "jobs", 5000));
  }
  Running sub = StartSift(*siftd, {"sub", "jobs.>", "--stream", "jobs",
                                   "--consumer", "c", "--all", "--ack"});
  ASSERT_GT(sub.pid, 0);
  // Some printed (and acknowledged) already.
  const absl::Time deadline = absl::Now() + kTimeout;
  while (absl::Now() < deadline &&
         ReadFile(sub.out).size() < 100 * sizeof("[jobs.before #1] b1")) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(kill(siftd->pid(), SIGSTOP), 0);
  absl::SleepFor(absl::Seconds(5));
  ASSERT_EQ(kill(siftd->pid(), SIGKILL), 0);
  ASSERT_TRUE(siftd->Restart().ok());
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->PublishConfirmed("jobs.after", "new", kTimeout).ok());
  // After the reconnect sift gets the records from its ack floor again, each
  // acknowledged with a round trip (AckSync), then "new": under a loaded CI
  // that took longer than a fixed 20 s. Wait while its output grows, up to
  // kTimeout without progress and 3 minutes in all.
  bool printed = false;
  size_t last_size = 0;
  absl::Time last_progress = absl::Now();
  const absl::Time cap = absl::Now() + absl::Minutes(3);
  while (!printed && absl::Now() < cap &&
         absl::Now() - last_progress < kTimeout) {
    const std::string now_out = ReadFile(sub.out);
    printed = absl::StrContains(now_out, "] new\n");
    if (now_out.size() != last_size) {
      last_size = now_out.size();
      last_progress = absl::Now();
    }
    if (!printed) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(kill(sub.pid, SIGTERM), 0);
  EXPECT_EQ(Reap(sub.pid, kTimeout), 0) << ReadFile(sub.out);
  const std::string out = ReadFile(sub.out);
  EXPECT_TRUE(printed) << out.substr(out.size() > 2000 ? out.size() - 2000 : 0);
  EXPECT_FALSE(absl::StrContains(out, "acknowledging")) << out;
  EXPECT_TRUE(absl::StrContains(
      out, "printed may or may not be acknowledged: the acknowledgement "
           "got no answer (the connection to the broker was lost"))
      << out;
}

// An ack the client took back unsent (no session until its timeout) was
// not applied: sift says the message was not acknowledged, not that it
// "may or may not be acknowledged" (no answer within 2s).
TEST(AcksCliTest, SubAckSaysAnAckNeverSentWasNotApplied) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  HeldSift sift(*siftd, "sub jobs.slow --ack");
  ASSERT_TRUE(WaitForConsumers(*client, 1)) << sift.err();
  const std::string payload(1000000, 'x');
  ASSERT_TRUE(client->PublishConfirmed("jobs.slow", payload, kTimeout).ok());
  // Written to sift's connection, and read by its client library.
  ASSERT_TRUE(WaitUntilWritten(*client));
  absl::SleepFor(absl::Seconds(1));

  SilenceBroker(*siftd, *client);
  sift.Release();
  const std::string line = absl::StrCat("[jobs.slow] ", payload, "\n");
  WaitFor([&] { return sift.out().size() >= line.size(); });
  EXPECT_EQ(sift.out(), line);
  // It stops once its AckSync returns.
  ASSERT_GT(sift.pid(), 0);
  ASSERT_EQ(kill(sift.pid(), SIGTERM), 0);
  EXPECT_EQ(sift.Reap(), 0);
  ASSERT_EQ(kill(siftd->pid(), SIGKILL), 0);
  const std::string err = sift.err();
  EXPECT_TRUE(absl::StartsWith(
      err, "sift: 1 message printed was not acknowledged: the session "))
      << err;
  EXPECT_TRUE(
      absl::StrContains(err, "the session it came in ended before its "
                             "acknowledgement was sent"))
      << err;
  EXPECT_FALSE(absl::StrContains(err, "may or may not")) << err;
}


// With the broker gone for good, what sift held when its session ended is
// printed at once and reported in one line. Each ack waited out
// --connect_timeout before (no session to send it in), so the messages
// came out one per timeout with a line each: 1,000 held (the default
// prefetch) would have taken 83 minutes at 5 s.
TEST(AcksCliTest, SubAckPrintsWhatItHeldAtOnceWhenTheBrokerIsGone) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  // Printing the 1 MB message blocks sift; the small ones after it wait in
  // its client library's queue.
  HeldSift sift(*siftd, "sub jobs.held --ack explicit");
  ASSERT_TRUE(WaitForConsumers(*client, 1)) << sift.err();
  const std::string big(1000000, 'x');
  constexpr int kSmall = 6;
  ASSERT_TRUE(client->PublishConfirmed("jobs.held", big, kTimeout).ok());
  for (int i = 0; i < kSmall; ++i) {
    ASSERT_TRUE(client
                    ->PublishConfirmed("jobs.held", absl::StrCat("m", i),
                                       kTimeout)
                    .ok());
  }
  ASSERT_TRUE(WaitUntilWritten(*client));
  absl::SleepFor(absl::Seconds(1));

  SilenceBroker(*siftd, *client);
  sift.Release();
  std::string want = absl::StrCat("[jobs.held] ", big, "\n");
  for (int i = 0; i < kSmall; ++i) {
    absl::StrAppend(&want, "[jobs.held] m", i, "\n");
  }
  const std::string said = absl::StrCat(
      "sift: ", 1 + kSmall, " messages printed were not acknowledged: the "
      "session they came in ended before their acknowledgement was sent");
  WaitFor([&] {
    return sift.out().size() >= want.size() &&
           absl::StrContains(sift.err(), said);
  });
  EXPECT_EQ(sift.out(), want);
  ASSERT_GT(sift.pid(), 0);
  ASSERT_EQ(kill(sift.pid(), SIGTERM), 0);
  EXPECT_EQ(sift.Reap(), 0);
  ASSERT_EQ(kill(siftd->pid(), SIGKILL), 0);
  // One line for them all (the first ack refused, the others not tried),
  // and nothing else.
  const std::string err = sift.err();
  EXPECT_TRUE(absl::StartsWith(err, said)) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}


// The flags reach the broker: a queue group's retry policy is its first
// member's, and a `sift sub` asking for another --max-deliver is refused
// (exit 1, the broker's reason); one asking for the same joins.
TEST(AcksCliTest, AQueueGroupRefusesAnotherMaxDeliver) {
  auto siftd = StartSiftd();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  SubscribeOptions first;
  first.queue_group = "workers";
  first.ack = AckOptions{};
  first.ack->max_deliver = 4;
  auto member = client->Subscribe("jobs.group", first);
  ASSERT_TRUE(member.ok()) << member.status();

  Running other = StartSift(*siftd, {"sub", "jobs.group", "--queue", "workers",
                                     "--ack", "--max-deliver", "2"});
  ASSERT_GT(other.pid, 0);
  EXPECT_EQ(Reap(other.pid, kTimeout), 1) << ReadFile(other.out);
  EXPECT_TRUE(absl::StrContains(ReadFile(other.out),
                                "sift: cannot subscribe to jobs.group: "))
      << ReadFile(other.out);
  EXPECT_TRUE(absl::StrContains(ReadFile(other.out), "max_deliver"))
      << ReadFile(other.out);

  Running same = StartSift(*siftd, {"sub", "jobs.group", "--queue", "workers",
                                    "--ack", "--max-deliver", "4", "--timeout",
                                    "1s"});
  ASSERT_GT(same.pid, 0);
  EXPECT_EQ(Reap(same.pid, kTimeout), 0) << ReadFile(same.out);
  EXPECT_EQ(ReadFile(same.out), "");
}

// fetch --nack: the record is refused, so the next fetch of the durable
// consumer gets it again; a fetch with plain --ack then acknowledges it.
TEST(AcksCliTest, FetchNackHandsTheRecordOutAgain) {
  auto siftd = StartWithJobsStream();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->PublishConfirmed("jobs.one", "r1", kTimeout).ok());

  const std::vector<std::string> fetch = {
      "fetch", "jobs", "--consumer", "c", "--ack", "--wait", "5s",
      "--backoff-initial", "10ms", "--backoff-jitter", "0"};
  std::vector<std::string> nack = fetch;
  nack.insert(nack.end(), {"--nack-delay", "0"});
  for (int round = 1; round <= 2; ++round) {
    Running r = StartSift(*siftd, nack);
    ASSERT_EQ(Reap(r.pid, kTimeout), 0) << ReadFile(r.out);
    EXPECT_EQ(ReadFile(r.out), "[jobs.one #1] r1\n") << "round " << round;
  }
  Running acked = StartSift(*siftd, fetch);
  ASSERT_EQ(Reap(acked.pid, kTimeout), 0) << ReadFile(acked.out);
  EXPECT_EQ(ReadFile(acked.out), "[jobs.one #1] r1\n");
  std::vector<std::string> empty = fetch;
  empty[6] = "300ms";  // --wait
  Running none = StartSift(*siftd, empty);
  ASSERT_EQ(Reap(none.pid, kTimeout), 0) << ReadFile(none.out);
  EXPECT_EQ(ReadFile(none.out), "");
}

// A stream consumer's record refused --max-deliver times: its dead letter
// says why (the NACKs) and names the stream and the record's seq.
TEST(AcksCliTest, AStreamDeadLetterNamesTheStreamAndItsSeq) {
  auto siftd = StartWithJobsStream();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  auto dead = client->Subscribe("$sift.deadletter.>");
  ASSERT_TRUE(dead.ok()) << dead.status();
  ASSERT_TRUE(client->PublishConfirmed("jobs.ok", "fine", kTimeout).ok());
  ASSERT_TRUE(client->PublishConfirmed("jobs.poison", "bad", kTimeout).ok());

  Running sub = StartSift(
      *siftd, {"sub", "jobs.poison", "--stream", "jobs", "--all", "--ack",
               "--nack", "--max-deliver", "2", "--backoff-initial", "20ms",
               "--backoff-jitter", "0", "--count", "2", "--timeout", "15s"});
  ASSERT_GT(sub.pid, 0);
  EXPECT_EQ(Reap(sub.pid, kTimeout), 0) << ReadFile(sub.out);
  absl::StatusOr<Message> d = (*dead)->Next(kTimeout);
  ASSERT_TRUE(d.ok()) << d.status() << ReadFile(sub.out);
  EXPECT_EQ(d->topic(), "$sift.deadletter.jobs.poison");
  EXPECT_EQ(d->payload(), "bad");
  EXPECT_EQ(d->header("sift-reason"), "max_deliver after nack");
  EXPECT_EQ(d->header("sift-attempts"), "2");
  EXPECT_EQ(d->header("sift-stream"), "jobs");
  EXPECT_EQ(d->header("sift-stream-seq"), "2");
}

// `sub --ack --count N` holds at most N messages (its --max-in-flight
// defaults to N): one-shot workers used to take the broker's default 1,000,
// print one, and leave the rest to come back as failed deliveries ("consumer
// left"), so that a few runs dead-lettered records nobody had printed.
TEST(AcksCliTest, AOneShotSubHoldsOnlyWhatItPrints) {
  auto siftd = StartWithJobsStream();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  auto dead = client->Subscribe("$sift.deadletter.>");
  ASSERT_TRUE(dead.ok()) << dead.status();
  for (int i = 1; i <= 10; ++i) {
    ASSERT_TRUE(client
                    ->PublishConfirmed(absl::StrCat("jobs.j", i),
                                       absl::StrCat("p", i), kTimeout)
                    .ok());
  }
  for (int run = 1; run <= 3; ++run) {
    Running r = StartSift(*siftd, {"sub", "jobs.>", "--stream", "jobs",
                                   "--consumer", "one-shot", "--all", "--ack",
                                   "--max-deliver", "2", "--count", "1",
                                   "--timeout", "10s"});
    ASSERT_EQ(Reap(r.pid, kTimeout), 0) << ReadFile(r.out);
    EXPECT_EQ(ReadFile(r.out),
              absl::StrCat("[jobs.j", run, " #", run, "] p", run, "\n"));
  }
  absl::StatusOr<Message> d = (*dead)->Next(absl::Milliseconds(300));
  EXPECT_FALSE(d.ok()) << "dead-lettered: " << d->topic();
}

// A stream deleted under `sub --stream --ack`: sift prints the messages it
// received, then the broker's reason, and exits 1, as it does without
// --ack. With --ack the first sign used to be an acknowledgement that
// failed (the broker had dropped the delivery with the stream): sift said
// only that ("delivery ... is not in flight") and printed no more. sift's
// stdout is a pipe nobody reads until the stream is gone, so that sift
// holds deliveries it has not printed yet when the broker ends the
// subscription.
TEST(AcksCliTest, SubAckSaysItsStreamWasDeleted) {
  auto siftd = StartSiftdWithStreams();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  const std::string payload(2000, 'x');  // 200 of them fill a pipe
  for (const bool ack : {true, false}) {
    SCOPED_TRACE(ack ? "--ack" : "no --ack");
    StreamConfig config;
    config.name = "jobs";
    config.subjects = {"jobs.>"};
    config.fsync = "never";
    ASSERT_TRUE(client->AddStream(config, kTimeout).ok());
    for (int i = 1; i <= 200; ++i) {
      ASSERT_TRUE(client->PublishConfirmed("jobs.j", payload, kTimeout).ok());
    }
    const std::string dir = NewTestDir("deleted-");
    ASSERT_FALSE(dir.empty());
    const std::string sift =
        absl::StrCat("\"$0\" --server=", siftd->endpoint(),
                     " sub 'jobs.>' --stream jobs --consumer c --all",
                     ack ? " --ack" : "");
    const pid_t pid = Spawn(
        {"/bin/sh", "-c",
         absl::StrCat("(", sift, " 2>\"$1/err\"; echo $? >\"$1/rc\") | ",
                      "(while [ ! -e \"$1/go\" ]; do sleep 0.02; done; ",
                      "wc -l >\"$1/lines\")"),
         SiftCliPath(), dir},
        dir + "/sh.txt");
    ASSERT_GT(pid, 0);
    // Every record delivered to sift, which is stuck printing them.
    bool delivered = false;
    const absl::Time deadline = absl::Now() + kTimeout;
    while (!delivered && absl::Now() < deadline) {
      absl::StatusOr<StreamInfo> info = client->GetStreamInfo("jobs", kTimeout);
      ASSERT_TRUE(info.ok()) << info.status();
      for (const ConsumerInfo& c : info->consumers) {
        delivered |= c.name == "c" && c.attached && c.delivered_seq == 200;
      }
      if (!delivered) absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_TRUE(delivered);
    ASSERT_TRUE(client->DeleteStream("jobs", kTimeout).ok());
    FILE* go = std::fopen((dir + "/go").c_str(), "w");
    ASSERT_NE(go, nullptr);
    std::fclose(go);
    EXPECT_EQ(Reap(pid, kTimeout), 0) << ReadFile(dir + "/sh.txt");
    const std::string err = ReadFile(dir + "/err");
    EXPECT_EQ(ReadFile(dir + "/rc"), "1\n") << err;
    EXPECT_EQ(ReadFile(dir + "/lines"), "200\n") << err;
    EXPECT_TRUE(absl::StrContains(
        err, "sift: subscription to jobs.> failed: subscription ended: "
             "stream \"jobs\" was deleted"))
        << err;
    EXPECT_FALSE(absl::StrContains(err, "acknowledging")) << err;
    // With --ack it says how many of the lines printed were not
    // acknowledged (those after the ones acknowledged before the stream
    // went); without, there are no acks.
    const std::string note = " printed were not acknowledged: the broker "
                             "ended the subscription\n";
    const size_t at = err.find(note);
    ASSERT_EQ(at != std::string::npos, ack) << err;
    if (!ack) continue;
    const size_t line = err.rfind("sift: ", at);
    ASSERT_NE(line, std::string::npos) << err;
    int unacked = -1;
    // "sift: N messages printed ...": N is more than one, as the pipe
    // holds about 32 lines.
    const size_t words = err.find(" messages", line);
    ASSERT_LT(words, at) << err;
    ASSERT_TRUE(
        absl::SimpleAtoi(err.substr(line + 6, words - line - 6), &unacked))
        << err;
    EXPECT_TRUE(unacked >= 1 && unacked <= 200) << err;
  }
}

// A stream deleted while `fetch --ack` prints what it fetched: sift prints
// them all, says that (some of) them were not acknowledged and the
// broker's reason, exit 1, as `sub --ack` does above. It used to say only
// that its last acknowledgement failed ("delivery ... is not in flight
// for this client (acknowledged already, its ack wait ran out ...)"),
// which named neither the stream nor its deletion. As above, sift's
// stdout is a pipe nobody reads until the stream is gone.
TEST(AcksCliTest, FetchAckSaysItsStreamWasDeleted) {
  auto siftd = StartSiftdWithStreams();
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  StreamConfig config;
  config.name = "jobs";
  config.subjects = {"jobs.>"};
  config.fsync = "never";
  ASSERT_TRUE(client->AddStream(config, kTimeout).ok());
  const std::string payload(2000, 'x');  // 200 of them fill a pipe
  for (int i = 1; i <= 200; ++i) {
    ASSERT_TRUE(client->PublishConfirmed("jobs.j", payload, kTimeout).ok());
  }
  const std::string dir = NewTestDir("fetch-deleted-");
  ASSERT_FALSE(dir.empty());
  const std::string sift =
      absl::StrCat("\"$0\" --server=", siftd->endpoint(),
                   " fetch jobs --consumer c --ack --batch 200");
  const pid_t pid =
      Spawn({"/bin/sh", "-c",
             absl::StrCat("(", sift, " 2>\"$1/err\"; echo $? >\"$1/rc\") | ",
                          "(while [ ! -e \"$1/go\" ]; do sleep 0.02; done; ",
                          "wc -l >\"$1/lines\")"),
             SiftCliPath(), dir},
            dir + "/sh.txt");
  ASSERT_GT(pid, 0);
  // The fetch answered: sift holds all 200, stuck printing them.
  bool delivered = false;
  const absl::Time deadline = absl::Now() + kTimeout;
  while (!delivered && absl::Now() < deadline) {
    absl::StatusOr<StreamInfo> info = client->GetStreamInfo("jobs", kTimeout);
    ASSERT_TRUE(info.ok()) << info.status();
    for (const ConsumerInfo& c : info->consumers) {
      delivered |= c.name == "c" && c.delivered_seq == 200;
    }
    if (!delivered) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(delivered);
  absl::SleepFor(absl::Milliseconds(200));  // the answer on its way to sift
  ASSERT_TRUE(client->DeleteStream("jobs", kTimeout).ok());
  FILE* go = std::fopen((dir + "/go").c_str(), "w");
  ASSERT_NE(go, nullptr);
  std::fclose(go);
  EXPECT_EQ(Reap(pid, kTimeout), 0) << ReadFile(dir + "/sh.txt");
  const std::string err = ReadFile(dir + "/err");
  EXPECT_EQ(ReadFile(dir + "/rc"), "1\n") << err;
  EXPECT_EQ(ReadFile(dir + "/lines"), "200\n") << err;
  EXPECT_TRUE(absl::StrContains(
      err, "sift: fetch from stream jobs failed: no stream \"jobs\""))
      << err;
  EXPECT_TRUE(absl::StrContains(
      err, " not acknowledged: the stream was deleted (with its records)\n"))
      << err;
  EXPECT_FALSE(absl::StrContains(err, "acknowledging")) << err;
}

// A `sub` whose stdout blocks while a burst comes: the client library's
// queue (64 MiB) fills, and sift says how many messages were dropped there.
// Without --ack they are lost (at most once). With --ack they were
// delivered and never acknowledged, so the broker delivers them again
// after their ack wait: sift used to word it as without --ack.
TEST(AcksCliTest, SubAckSaysDroppedMessagesComeAgain) {
  // Room in the broker for the whole burst (120 MB) for sift's connection,
  // so that only sift's own queue drops: with the default 64 MiB, a slow
  // machine also had the broker drop some first, and say so first.
  auto siftd = StartSiftd({"--max_pending_bytes_per_client=536870912"});
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  const std::string payload(1000000, 'x');  // 67 fill the client's queue
  constexpr int kBurst = 120;
  for (const bool ack : {true, false}) {
    SCOPED_TRACE(ack ? "--ack" : "no --ack");
    const std::string topic = ack ? "burst.ack" : "burst.plain";
    const std::string dir = NewTestDir("dropped-");
    ASSERT_FALSE(dir.empty());
    const std::string sift = absl::StrCat(
        "\"$0\" --server=", siftd->endpoint(), " sub ", topic,
        ack ? absl::StrCat(" --ack --max-in-flight ", kBurst) : "");
    const pid_t pid =
        Spawn({"/bin/sh", "-c",
               absl::StrCat("(", sift, " 2>\"$1/err\" & echo $! >\"$1/pid\"; ",
                            "wait $!) | ",
                            "(while [ ! -e \"$1/go\" ]; do sleep 0.02; done; ",
                            "cat >/dev/null)"),
               SiftCliPath(), dir},
              dir + "/sh.txt");
    ASSERT_GT(pid, 0);
    bool subscribed = false;
    absl::Time deadline = absl::Now() + kTimeout;
    while (!subscribed && absl::Now() < deadline) {
      absl::StatusOr<BrokerStats> stats = client->Stats(kTimeout);
      ASSERT_TRUE(stats.ok()) << stats.status();
      subscribed = stats->subscriptions() == 1;
      if (!subscribed) absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_TRUE(subscribed) << ReadFile(dir + "/err");
    for (int i = 1; i <= kBurst; ++i) {
      ASSERT_TRUE(client->PublishConfirmed(topic, payload, kTimeout).ok());
    }
    // All written to sift's connection, and read by its client library
    // while sift is stuck printing the first.
    bool written = false;
    while (!written && absl::Now() < deadline) {
      absl::StatusOr<BrokerStats> stats = client->Stats(kTimeout);
      ASSERT_TRUE(stats.ok()) << stats.status();
      written = stats->pending_bytes() == 0;
      if (!written) absl::SleepFor(absl::Milliseconds(20));
    }
    ASSERT_TRUE(written);
    absl::SleepFor(absl::Seconds(1));
    FILE* go = std::fopen((dir + "/go").c_str(), "w");
    ASSERT_NE(go, nullptr);
    std::fclose(go);
    std::string err;
    deadline = absl::Now() + kTimeout;
    while (!absl::StrContains(err, "dropped here") && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
      err = ReadFile(dir + "/err");
    }
    int sift_pid = 0;
    ASSERT_TRUE(absl::SimpleAtoi(
        absl::StripAsciiWhitespace(ReadFile(dir + "/pid")), &sift_pid));
    ASSERT_EQ(kill(sift_pid, SIGTERM), 0);
    EXPECT_EQ(Reap(pid, kTimeout), 0) << ReadFile(dir + "/sh.txt");
    err = ReadFile(dir + "/err");
    const std::string starts =
        absl::StrCat("sift: subscription to ", topic, ": ");
    ASSERT_TRUE(absl::StartsWith(err, starts)) << err;
    const std::string line = err.substr(0, err.find('\n'));
    EXPECT_TRUE(absl::StrContains(line, " dropped here: ")) << err;
    const std::string again =
        "; with --ack they are not lost: unacknowledged, they are delivered "
        "again once their ack wait (30s) runs out";
    EXPECT_EQ(absl::EndsWith(line, again), ack) << err;
  }
}

// `fetch --ack` and `sub --ack` exit only once the broker has saved the
// named consumer's position: a broker killed right after still has it.
TEST(AcksCliTest, AckedPositionsSurviveAKillRightAfterTheCommand) {
  auto siftd = StartWithJobsStream();
  ASSERT_NE(siftd, nullptr);
  {
    auto client = Connect(siftd->endpoint());
    ASSERT_NE(client, nullptr);
    for (int i = 1; i <= 6; ++i) {
      ASSERT_TRUE(client
                      ->PublishConfirmed(absl::StrCat("jobs.j", i),
                                         absl::StrCat("p", i), kTimeout)
                      .ok());
    }
  }
  const std::vector<std::string> fetch = {"fetch", "jobs", "--consumer", "f",
                                          "--ack", "--batch", "2",
                                          "--wait", "2s"};
  const std::vector<std::string> sub = {
      "sub",   "jobs.>", "--stream", "jobs", "--consumer", "s", "--all",
      "--ack", "--count", "2",     "--timeout", "10s"};
  for (int round = 0; round < 3; ++round) {
    Running f = StartSift(*siftd, fetch);
    ASSERT_EQ(Reap(f.pid, kTimeout), 0) << ReadFile(f.out);
    Running s = StartSift(*siftd, sub);
    ASSERT_EQ(Reap(s.pid, kTimeout), 0) << ReadFile(s.out);
    const int a = 2 * round + 1, b = 2 * round + 2;
    const std::string expected = absl::StrCat(
        "[jobs.j", a, " #", a, "] p", a, "\n[jobs.j", b, " #", b, "] p", b,
        "\n");
    EXPECT_EQ(ReadFile(f.out), expected) << "round " << round;
    EXPECT_EQ(ReadFile(s.out), expected) << "round " << round;
    ASSERT_EQ(kill(siftd->pid(), SIGKILL), 0);
    ASSERT_TRUE(siftd->Restart().ok());
  }
}

}  // namespace
}  // namespace sift::test
