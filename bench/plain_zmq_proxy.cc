// plain_zmq_proxy: the leanest ZeroMQ pub/sub program we know how to write,
// kept as the check on sift-bench's proxy baseline (issue 11): sift-bench
// --mode proxy must not cost more per message than this.
//
//   plain_zmq_proxy [--size BYTES] [--count N] [--topic T] [--direct] [--json]
//
// Default: PUB -> zmq_proxy (XSUB | XPUB, in a forked child process) -> SUB,
// everything on free 127.0.0.1 ports. --direct: PUB -> SUB with no proxy
// (the subscriber binds), the physical limit of ZeroMQ over loopback here.
// One message per zmq_send, a single frame laid out as sift-bench's proxy
// mode lays it out: the topic (default "bench.topic", sift-bench's), a NUL,
// then BYTES of payload whose first byte says probe or data. High-water
// marks 1,000,000 on every socket, ZMQ_XPUB_NODROP on the publisher's PUB
// and the proxy's XPUB (a full queue blocks the sender rather than
// dropping), one prefix subscription: the topic. (ZeroMQ matches that prefix
// byte by byte in the PUB, the proxy's XPUB and the SUB, about 20
// instructions per byte each; `--topic d` shows what a one-byte topic
// saves.) Publisher and subscriber run on their own threads with their own
// contexts, like sift-bench's. Nothing else: no stamp, no clock read per
// message, no check of content beyond counting.
//
// Throughput is measured at the subscriber, first to last data message, as
// sift-bench does. Exit status 0 if all COUNT messages arrived, 3 if not
// (timeout), 1 on a setup error.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

namespace {

constexpr int kHighWaterMark = 1000000;  // sift's default, both ways
constexpr int64_t kTimeoutNs = 120'000'000'000;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void SetHighWaterMarks(void* socket) {
  const int hwm = kHighWaterMark, linger = 0;
  zmq_setsockopt(socket, ZMQ_SNDHWM, &hwm, sizeof(hwm));
  zmq_setsockopt(socket, ZMQ_RCVHWM, &hwm, sizeof(hwm));
  zmq_setsockopt(socket, ZMQ_LINGER, &linger, sizeof(linger));
}

std::string BoundEndpoint(void* socket) {
  char buf[256];
  size_t len = sizeof(buf);
  if (zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, buf, &len) != 0 || len < 2) {
    return "";
  }
  return std::string(buf, len - 1);
}

// The child: binds XSUB and XPUB on free ports, writes "front back\n" to
// `out`, and runs zmq_proxy until it is killed.
[[noreturn]] void ProxyChild(int out) {
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  void* context = zmq_ctx_new();
  void* frontend = zmq_socket(context, ZMQ_XSUB);
  void* backend = zmq_socket(context, ZMQ_XPUB);
  SetHighWaterMarks(frontend);
  SetHighWaterMarks(backend);
  const int one = 1;
  zmq_setsockopt(backend, ZMQ_XPUB_NODROP, &one, sizeof(one));
  if (zmq_bind(frontend, "tcp://127.0.0.1:0") != 0 ||
      zmq_bind(backend, "tcp://127.0.0.1:0") != 0) {
    _exit(1);
  }
  const std::string line =
      BoundEndpoint(frontend) + " " + BoundEndpoint(backend) + "\n";
  if (write(out, line.data(), line.size()) !=
      static_cast<ssize_t>(line.size())) {
    _exit(1);
  }
  close(out);
  zmq_proxy(frontend, backend, nullptr);
  _exit(0);
}

struct Shared {
  std::atomic<bool> ready{false};     // the subscriber saw a probe
  std::atomic<bool> finished{false};  // the subscriber has everything
  std::atomic<uint64_t> received{0};
  int64_t first_ns = 0, last_ns = 0;  // read after join
};

// `kind_at`: the offset of the probe/data byte in every frame.
void Subscriber(void* socket, size_t kind_at, uint64_t count, Shared* shared) {
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  uint64_t received = 0;
  const int64_t deadline = NowNs() + kTimeoutNs;
  while (received < count && NowNs() < deadline) {
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, 100) <= 0) continue;
    while (zmq_msg_recv(&msg, socket, ZMQ_DONTWAIT) >= 0) {
      if (static_cast<const char*>(zmq_msg_data(&msg))[kind_at] == 'p') {
        shared->ready.store(true, std::memory_order_release);
        continue;
      }
      if (received == 0) shared->first_ns = NowNs();
      if (++received == count) {
        shared->last_ns = NowNs();
        break;
      }
    }
  }
  shared->received.store(received);
  shared->finished.store(true, std::memory_order_release);
  zmq_msg_close(&msg);
}

int Usage() {
  std::fputs(
      "usage: plain_zmq_proxy [--size BYTES] [--count N] [--topic T] "
      "[--direct] [--json]\n",
      stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  size_t size = 128;
  uint64_t count = 1000000;
  std::string topic = "bench.topic";
  bool direct = false, json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--direct") {
      direct = true;
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--size" && i + 1 < argc) {
      size = std::strtoull(argv[++i], nullptr, 10);
    } else if (arg == "--topic" && i + 1 < argc) {
      topic = argv[++i];
    } else if (arg == "--count" && i + 1 < argc) {
      count = std::strtoull(argv[++i], nullptr, 10);
    } else {
      return Usage();
    }
  }
  if (size < 1 || count < 1) return Usage();

  // The proxy first: fork before any ZeroMQ context exists in this process.
  pid_t proxy_pid = 0;
  std::string front, back;
  if (!direct) {
    int fds[2];
    if (pipe(fds) != 0) return 1;
    proxy_pid = fork();
    if (proxy_pid < 0) return 1;
    if (proxy_pid == 0) {
      close(fds[0]);
      ProxyChild(fds[1]);
    }
    close(fds[1]);
    char buf[512];
    size_t got = 0;
    while (got < sizeof(buf) - 1) {
      const ssize_t n = read(fds[0], buf + got, sizeof(buf) - 1 - got);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
      if (buf[got - 1] == '\n') break;
    }
    close(fds[0]);
    buf[got] = '\0';
    char f[256], b[256];
    if (std::sscanf(buf, "%255s %255s", f, b) != 2) {
      std::fprintf(stderr, "plain_zmq_proxy: the proxy did not start\n");
      kill(proxy_pid, SIGKILL);
      waitpid(proxy_pid, nullptr, 0);
      return 1;
    }
    front = f;
    back = b;
  }

  void* sub_context = zmq_ctx_new();
  void* sub = zmq_socket(sub_context, ZMQ_SUB);
  SetHighWaterMarks(sub);
  zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic.data(), topic.size());
  if (direct) {
    zmq_bind(sub, "tcp://127.0.0.1:0");
    front = BoundEndpoint(sub);
  } else {
    zmq_connect(sub, back.c_str());
  }
  void* pub_context = zmq_ctx_new();
  void* pub = zmq_socket(pub_context, ZMQ_PUB);
  SetHighWaterMarks(pub);
  const int one = 1;
  zmq_setsockopt(pub, ZMQ_XPUB_NODROP, &one, sizeof(one));
  // A send blocked this long at the water mark ends the run (bounded).
  const int send_timeout_ms = 30000;
  zmq_setsockopt(pub, ZMQ_SNDTIMEO, &send_timeout_ms, sizeof(send_timeout_ms));
  zmq_connect(pub, front.c_str());

  Shared shared;
  const size_t kind_at = topic.size() + 1;
  std::thread sub_thread(Subscriber, sub, kind_at, count, &shared);

  // Probes until the subscription has reached the publisher's side.
  std::string frame = topic + '\0' + std::string(size, 'x');
  frame[kind_at] = 'p';
  const int64_t ready_deadline = NowNs() + 30'000'000'000;
  while (!shared.ready.load(std::memory_order_acquire) &&
         NowNs() < ready_deadline) {
    zmq_send(pub, frame.data(), frame.size(), ZMQ_DONTWAIT);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  frame[kind_at] = 'd';
  uint64_t sent = 0;
  const int64_t start = NowNs();
  if (shared.ready.load()) {
    for (; sent < count; ++sent) {
      if (zmq_send(pub, frame.data(), frame.size(), 0) < 0 &&
          zmq_errno() != EINTR) {
        break;
      }
    }
  }
  const int64_t published = NowNs();
  sub_thread.join();

  const uint64_t received = shared.received.load();
  const double seconds = shared.last_ns > shared.first_ns
                             ? (shared.last_ns - shared.first_ns) / 1e9
                             : 0;
  const double rate = seconds > 0 ? received / seconds : 0;
  const double publish_rate =
      published > start ? sent * 1e9 / (published - start) : 0;
  if (json) {
    std::printf(
        "{\"mode\": \"%s\", \"size\": %zu, \"count\": %llu, \"received\": "
        "%llu, \"msgs_per_s\": %.0f, \"mb_per_s\": %.1f, "
        "\"publish_msgs_per_s\": %.0f, \"complete\": %s}\n",
        direct ? "direct" : "proxy", size,
        static_cast<unsigned long long>(count),
        static_cast<unsigned long long>(received), rate, rate * size / 1e6,
        publish_rate, received == count ? "true" : "false");
  } else {
    std::printf(
        "plain_zmq_proxy %s size=%zu count=%llu received=%llu msgs/s=%.0f "
        "MB/s=%.1f publish msgs/s=%.0f\n",
        direct ? "direct" : "proxy", size,
        static_cast<unsigned long long>(count),
        static_cast<unsigned long long>(received), rate, rate * size / 1e6,
        publish_rate);
  }

  zmq_close(pub);
  zmq_close(sub);
  zmq_ctx_term(pub_context);
  zmq_ctx_term(sub_context);
  if (proxy_pid > 0) {
    kill(proxy_pid, SIGTERM);
    waitpid(proxy_pid, nullptr, 0);
  }
  return received == count ? 0 : 3;
}
