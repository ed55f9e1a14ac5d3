#include "bench/servers.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include <zmq.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>

#include "absl/strings/str_cat.h"
#include "bench/tcp_stream.h"
#include "broker/config/config.h"

namespace sift::bench {
namespace {

// The value of `key=` in a logfmt line ("... endpoint=tcp://1.2.3.4:5 ...").
std::string LogValue(const std::string& line, std::string_view key) {
  const std::string needle = absl::StrCat(" ", std::string(key), "=");
  size_t at = line.find(needle);
  if (at == std::string::npos) return "";
  at += needle.size();
  const size_t end = line.find(' ', at);
  return line.substr(at, end == std::string::npos ? std::string::npos
                                                  : end - at);
}

std::string BoundEndpoint(void* socket) {
  char buf[256];
  size_t len = sizeof(buf);
  if (zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, buf, &len) != 0 || len < 2) {
    return "";
  }
  return std::string(buf, len - 1);
}

}  // namespace

int Server::Stop() {
  if (!config_path.empty()) {
    unlink(config_path.c_str());
    config_path.clear();
  }
  if (child == nullptr) return 0;
  auto code = child->Stop();
  if (!code.ok()) {
    std::fprintf(stderr, "sift-bench: %s\n",
                 std::string(code.status().message()).c_str());
    return -1;
  }
  return *code;
}

absl::StatusOr<Server> StartSiftd(const Options& options,
                                  uint64_t subscriptions_per_client) {
  Server server;
  if (options.spawn.empty()) {
    server.endpoint = options.server;
    server.pid = options.server_pid;
    return server;
  }
  // The throughput rows measure a broker with room for a whole burst, as
  // the baseline has (high-water marks of 1,000,000 messages, NODROP): a
  // subscriber may fall behind by the entire run. siftd's defaults bound
  // what one client may have waiting (64 MiB, as NATS's max_pending) and
  // would drop the rest of such a burst, counted. The memory row holds a
  // million subscriptions plus the clients' inboxes. --siftd-flag values
  // come later and win.
  std::vector<std::string> argv = {
      options.spawn, "--endpoints=tcp://127.0.0.1:0",
      "--max_pending_bytes_per_client=4294967296",
      "--max_pending_bytes=17179869184", "--max_subscriptions=100000000"};
  for (const std::string& f : options.siftd_flags) argv.push_back(f);
  if (subscriptions_per_client > Config{}.max_subscriptions_per_client) {
    argv.push_back(absl::StrCat("--max_subscriptions_per_client=",
                                subscriptions_per_client));
  }
  auto child = ChildProcess::Start(argv);
  if (!child.ok()) return child.status();
  auto line = (*child)->WaitForLogLine("msg=listening", absl::Seconds(10));
  if (!line.ok()) return line.status();
  server.endpoint = LogValue(*line, "endpoint");
  if (server.endpoint.empty()) {
    return absl::InternalError(
        absl::StrCat("cannot find the endpoint in siftd's line: ", *line));
  }
  server.pid = (*child)->pid();
  server.child = std::move(*child);
  return server;
}

absl::StatusOr<Server> StartNats(const Options& options) {
  Server server;
  if (options.spawn.empty()) {
    server.endpoint = options.server;
    server.pid = options.server_pid;
    return server;
  }
  const char* tmp = std::getenv("TEST_TMPDIR");
  if (tmp == nullptr || *tmp == '\0') tmp = std::getenv("TMPDIR");
  std::string path =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                   "/sift-bench-nats-XXXXXX");
  const int fd = mkstemp(path.data());
  if (fd < 0) return absl::InternalError("cannot create a nats-server config");
  const std::string config =
      "listen: 127.0.0.1:-1\n"
      "max_pending: 4GB\n"
      "max_payload: 8MB\n"
      "write_deadline: \"60s\"\n";
  const bool written =
      write(fd, config.data(), config.size()) ==
      static_cast<ssize_t>(config.size());
  close(fd);
  server.config_path = path;
  if (!written) return absl::InternalError("cannot write " + path);
  auto child = ChildProcess::Start({options.spawn, "-c", path});
  if (!child.ok()) return child.status();
  auto line = (*child)->WaitForLogLine("Listening for client connections on",
                                       absl::Seconds(10));
  if (!line.ok()) return line.status();
  const size_t at = line->rfind(' ');
  server.endpoint = line->substr(at + 1);
  server.pid = (*child)->pid();
  server.child = std::move(*child);
  return server;
}

absl::StatusOr<Server> StartRedis(const Options& options) {
  Server server;
  if (options.spawn.empty()) {
    server.endpoint = options.server;
    server.pid = options.server_pid;
    return server;
  }
  absl::Status last = absl::OkStatus();
  for (int attempt = 0; attempt < 5; ++attempt) {  // the port may be taken
    auto port = FreeLoopbackPort();
    if (!port.ok()) return port.status();
    auto child = ChildProcess::Start(
        {options.spawn, "--port", absl::StrCat(*port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--protected-mode", "no",
         "--daemonize", "no", "--client-output-buffer-limit", "pubsub 0 0 0",
         "--client-output-buffer-limit", "normal 0 0 0"});
    if (!child.ok()) return child.status();
    auto line = (*child)->WaitForLogLine("Ready to accept connections",
                                         absl::Seconds(10));
    if (!line.ok()) {
      last = line.status();
      continue;
    }
    server.endpoint = absl::StrCat("127.0.0.1:", *port);
    server.pid = (*child)->pid();
    server.child = std::move(*child);
    return server;
  }
  return last;
}

void SetHighWaterMarks(void* socket) {
  const int hwm = kHighWaterMark, linger = 0;
  zmq_setsockopt(socket, ZMQ_SNDHWM, &hwm, sizeof(hwm));
  zmq_setsockopt(socket, ZMQ_RCVHWM, &hwm, sizeof(hwm));
  zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof(linger));
}

absl::StatusOr<Server> StartProxy(ProxyKind kind) {
  auto self = SelfExecutable();
  if (!self.ok()) return self.status();
  auto child = ChildProcess::Start(
      {*self, "proxy-server", "--frontend", "tcp://127.0.0.1:0", "--backend",
       "tcp://127.0.0.1:0", "--kind",
       kind == ProxyKind::kPubSub ? "pubsub" : "pushpull"});
  if (!child.ok()) return child.status();
  auto line =
      (*child)->WaitForLogLine("proxy-server: ready", absl::Seconds(10));
  if (!line.ok()) return line.status();
  Server server;
  server.endpoint = LogValue(*line, "frontend");
  server.backend = LogValue(*line, "backend");
  if (server.endpoint.empty() || server.backend.empty()) {
    return absl::InternalError(
        absl::StrCat("cannot parse the proxy's endpoints: ", *line));
  }
  server.pid = (*child)->pid();
  server.child = std::move(*child);
  return server;
}

int ProxyServerMain(int argc, char** argv) {
  std::string frontend_ep = "tcp://127.0.0.1:0";
  std::string backend_ep = "tcp://127.0.0.1:0";
  std::string kind = "pubsub";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    }
    if (arg == "--frontend") {
      frontend_ep = value;
    } else if (arg == "--backend") {
      backend_ep = value;
    } else if (arg == "--kind") {
      kind = value;
    } else {
      std::fprintf(stderr,
                   "usage: sift-bench proxy-server --frontend EP --backend EP "
                   "[--kind pubsub|pushpull]\n");
      return 2;
    }
  }
  if (kind != "pubsub" && kind != "pushpull") {
    std::fprintf(stderr, "proxy-server: --kind must be pubsub or pushpull\n");
    return 2;
  }
  // SIGTERM/SIGINT are taken by sigwait() on a watcher thread; block them
  // before any thread (ZeroMQ's included) exists so all inherit the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  void* context = zmq_ctx_new();
  const bool pubsub = kind == "pubsub";
  void* frontend = zmq_socket(context, pubsub ? ZMQ_XSUB : ZMQ_PULL);
  void* backend = zmq_socket(context, pubsub ? ZMQ_XPUB : ZMQ_PUSH);
  const int one = 1;
  for (void* s : {frontend, backend}) SetHighWaterMarks(s);
  // Nothing dropped silently: at the water mark the proxy blocks instead.
  if (pubsub) zmq_setsockopt(backend, ZMQ_XPUB_NODROP, &one, sizeof(one));
  if (zmq_bind(frontend, frontend_ep.c_str()) != 0 ||
      zmq_bind(backend, backend_ep.c_str()) != 0) {
    std::fprintf(stderr, "proxy-server: cannot bind: %s\n",
                 zmq_strerror(zmq_errno()));
    return 1;
  }
  void* control = zmq_socket(context, ZMQ_PAIR);
  zmq_bind(control, "inproc://proxy-control");
  std::thread watcher([context, &stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    void* s = zmq_socket(context, ZMQ_PAIR);
    zmq_connect(s, "inproc://proxy-control");
    zmq_send(s, "TERMINATE", 9, 0);
    zmq_close(s);
  });
  std::printf("proxy-server: ready kind=%s frontend=%s backend=%s\n",
              kind.c_str(), BoundEndpoint(frontend).c_str(),
              BoundEndpoint(backend).c_str());
  std::fflush(stdout);
  zmq_proxy_steerable(frontend, backend, nullptr, control);
  watcher.join();
  zmq_close(frontend);
  zmq_close(backend);
  zmq_close(control);
  zmq_ctx_term(context);
  std::printf("proxy-server: stopped\n");
  return 0;
}

}  // namespace sift::bench
