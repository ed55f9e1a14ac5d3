// The C++ client's shared ZeroMQ context (ClientOptions::zmq_context null),
// against a real siftd: many Clients in one process (more than a default
// ZeroMQ context's 1023 sockets take), and a Client made in a child after
// fork() by a parent that already had one.
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "clients/cpp/client.h"
#include "gtest/gtest.h"
#include "tests/harness.h"
#include "tests/siftd_process.h"

namespace sift::test {
namespace {

TEST(ClientContextTest, FourHundredClientsInOneProcess) {
  auto siftd = StartSiftd({});
  ASSERT_NE(siftd, nullptr);
  // Three sockets each (DEALER and a monitor pair): 1,200 in the one
  // context, past ZeroMQ's default ZMQ_MAX_SOCKETS of 1023.
  constexpr int kClients = 400;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    auto client = Connect(siftd->endpoint());
    ASSERT_NE(client, nullptr) << "client " << i;
    clients.push_back(std::move(client));
  }
  auto sub = clients.back()->Subscribe("ctx.>");
  ASSERT_TRUE(sub.ok()) << sub.status();
  for (int i = 0; i < kClients; i += 50) {
    ASSERT_TRUE(
        clients[i]->PublishConfirmed(absl::StrCat("ctx.", i), "x").ok());
    auto m = (*sub)->Next(absl::Seconds(5));
    ASSERT_TRUE(m.ok()) << m.status();
    EXPECT_EQ(m->topic(), absl::StrCat("ctx.", i));
  }
  for (auto& c : clients) c->Close();
}

// A program that publishes and exits at once: Close() must not leave
// messages in the shared context's pipes, which nobody waits for at exit.
TEST(ClientContextTest, AShortLivedPublisherLosesNothingAtExit) {
  auto siftd = StartSiftd({});
  ASSERT_NE(siftd, nullptr);
  auto client = Connect(siftd->endpoint());
  ASSERT_NE(client, nullptr);
  auto sub = client->Subscribe("exit.>");
  ASSERT_TRUE(sub.ok()) << sub.status();
  constexpr int kMessages = 50000;
  for (int run = 0; run < 3; ++run) {
    const std::string out = NewTestDir("pub") + "/out.txt";
    const pid_t pid = Spawn({SiftCliPath(),
                             absl::StrCat("--server=", siftd->endpoint()),
                             "pub", "exit.t", "m{n}", "--count",
                             absl::StrCat(kMessages)},
                            out);
    ASSERT_GT(pid, 0);
    ASSERT_EQ(Reap(pid, absl::Seconds(30)), 0);
    int received = 0;
    while (received < kMessages) {
      auto m = (*sub)->Next(absl::Seconds(5));
      if (!m.ok()) break;
      ++received;
    }
    ASSERT_EQ(received, kMessages) << "run " << run;
  }
}

// inproc:// lives inside one context: without the embedded broker's, the
// shared context has nobody there, and the error says what to set.
TEST(ClientContextTest, InprocWithoutTheBrokersContextSaysWhatToSet) {
  ClientOptions options;
  options.endpoint = "inproc://no-broker-here";
  options.connect_timeout = absl::Milliseconds(200);
  auto client = Client::Connect(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(absl::StrContains(client.status().message(),
                                "EmbeddedBroker::zmq_context()"))
      << client.status();
}

// An ipc:// path with no socket file is named; an endpoint refused at once
// lists inproc:// only to a client given a context, the one way it works.
TEST(ClientContextTest, MissingIpcSocketFileAndEndpointShapesAreSaid) {
  char dir[] = "/tmp/sift-ctx-XXXXXX";  // short: sun_path holds 107 bytes
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = absl::StrCat(dir, "/nobody.sock");
  ClientOptions options;
  options.endpoint = "ipc://" + path;
  options.connect_timeout = absl::Milliseconds(200);
  auto client = Client::Connect(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(
      client.status().message(),
      absl::StrCat("cannot connect to ipc://", path,
                   ": no answer within 200ms: there is no socket file ", path,
                   " (No such file or directory); is siftd running "
                   "there?"));
  rmdir(dir);

  options.endpoint = "127.0.0.1:7440";
  client = Client::Connect(options);
  ASSERT_FALSE(client.ok());
  EXPECT_TRUE(absl::EndsWith(client.status().message(),
                             "(endpoints look like tcp://127.0.0.1:7440 or "
                             "ipc:///path)"))
      << client.status();
  void* context = zmq_ctx_new();
  ASSERT_NE(context, nullptr);
  options.zmq_context = context;
  client = Client::Connect(options);
  ASSERT_FALSE(client.ok());
  EXPECT_TRUE(absl::EndsWith(client.status().message(),
                             "(endpoints look like tcp://127.0.0.1:7440, "
                             "ipc:///path or inproc://name)"))
      << client.status();
  zmq_ctx_term(context);
}

TEST(ClientContextTest, AChildAfterForkMakesItsOwnContext) {
  auto siftd = StartSiftd({});
  ASSERT_NE(siftd, nullptr);
  auto parent = Connect(siftd->endpoint());  // the parent's context is made
  ASSERT_NE(parent, nullptr);
  auto sub = parent->Subscribe("forked.>");
  ASSERT_TRUE(sub.ok()) << sub.status();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // No gtest here: the exit status says what happened.
    ClientOptions options;
    options.endpoint = siftd->endpoint();
    options.connect_timeout = absl::Seconds(5);
    auto client = Client::Connect(options);
    if (!client.ok()) _exit(2);
    if (!(*client)->PublishConfirmed("forked.child", "hi").ok()) _exit(3);
    (*client)->Close();
    _exit(0);
  }
  int status = 0;
  pid_t waited = -1;
  for (int i = 0; i < 1000; ++i) {  // at most 10 s
    waited = waitpid(child, &status, WNOHANG);
    if (waited != 0) break;
    usleep(10000);
  }
  if (waited == 0) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    FAIL() << "the forked child did not finish in 10 s";
  }
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  auto m = (*sub)->Next(absl::Seconds(5));
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->topic(), "forked.child");
  EXPECT_EQ(m->payload(), "hi");
}

}  // namespace
}  // namespace sift::test
