#include "bench/nats_transport.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/servers.h"
#include "bench/sift_transport.h"
#include "bench/tcp_stream.h"

namespace sift::bench {
namespace {

constexpr absl::Duration kReplyTimeout = absl::Seconds(30);
constexpr int kReadWaitMs = 100;

// The first line in `in` without its "\r\n"; *found is false (and the view
// empty) when no whole line has arrived yet.
std::string_view Line(std::string_view in, bool* found) {
  const size_t end = in.find("\r\n");
  *found = end != std::string_view::npos;
  return *found ? in.substr(0, end) : std::string_view();
}

// Reads lines until one equals `want` (answering PINGs, skipping +OK, INFO
// and PONGs that are not wanted); fails on -ERR, a closed connection or the
// timeout.
absl::Status WaitForLine(TcpStream* conn, std::string_view want) {
  const absl::Time deadline = absl::Now() + kReplyTimeout;
  while (absl::Now() < deadline) {
    bool found = false;
    std::string_view line = Line(conn->Buffered(), &found);
    if (!found) {
      if (absl::Status s = conn->Fill(kReadWaitMs); !s.ok()) return s;
      continue;
    }
    const std::string text(line);
    conn->Consume(line.size() + 2);
    if (text.rfind(want, 0) == 0) return absl::OkStatus();
    if (text.rfind("-ERR", 0) == 0) {
      return absl::FailedPreconditionError(absl::StrCat("nats-server: ", text));
    }
    if (text == "PING") {
      if (absl::Status s = conn->Append("PONG\r\n"); !s.ok()) return s;
      if (absl::Status s = conn->Flush(); !s.ok()) return s;
    }
  }
  return absl::DeadlineExceededError(
      absl::StrCat("nats-server did not answer ", std::string(want)));
}

// A round trip: once PONG is back, everything sent before PING has been
// processed by the server.
absl::Status Ping(TcpStream* conn) {
  if (absl::Status s = conn->Append("PING\r\n"); !s.ok()) return s;
  if (absl::Status s = conn->Flush(); !s.ok()) return s;
  return WaitForLine(conn, "PONG");
}

absl::StatusOr<std::unique_ptr<TcpStream>> Handshake(
    const std::string& endpoint, const std::string& name) {
  auto conn = TcpStream::Connect(endpoint);
  if (!conn.ok()) return conn.status();
  if (absl::Status s = WaitForLine(conn->get(), "INFO "); !s.ok()) return s;
  const std::string connect = absl::StrCat(
      "CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"", name,
      "\",\"lang\":\"c++\",\"version\":\"sift-bench\",\"protocol\":1}\r\n");
  if (absl::Status s = (*conn)->Append(connect); !s.ok()) return s;
  if (absl::Status s = Ping(conn->get()); !s.ok()) return s;
  return conn;
}

class NatsTransport : public Transport {
 public:
  explicit NatsTransport(const Options& options) : options_(options) {}
  ~NatsTransport() override {
    Disconnect();
    StopServer();
  }

  absl::Status Prepare(const std::vector<Receiver*>& receivers) override {
    auto server = StartNats(options_);
    if (!server.ok()) return server.status();
    server_ = std::move(*server);

    const std::string queue =
        options_.queue_group() ? options_.queue + " " : "";
    for (size_t i = 0; i < receivers.size(); ++i) {
      auto conn =
          Handshake(server_.endpoint, absl::StrCat("sift-bench-sub-", i));
      if (!conn.ok()) return conn.status();
      for (int t = 0; t < options_.topics; ++t) {
        const std::string subject = options_.topics > 1
                                        ? options_.TopicOf(t)
                                        : options_.SubscriberPattern();
        if (absl::Status s = (*conn)->Append(
                absl::StrCat("SUB ", subject, " ", queue, t + 1, "\r\n"));
            !s.ok()) {
          return s;
        }
      }
      if (absl::Status s = Ping(conn->get()); !s.ok()) return s;
      TcpStream* c = conn->get();
      sub_conns_.push_back(std::move(*conn));
      readers_.emplace_back([this, c, r = receivers[i]] { ReaderLoop(c, r); });
    }

    if (options_.noise > 0) {
      const int holders =
          std::max(1, std::min(options_.noise_clients, options_.noise));
      for (int k = 0; k < holders; ++k) {
        auto conn =
            Handshake(server_.endpoint, absl::StrCat("sift-bench-noise-", k));
        if (!conn.ok()) return conn.status();
        noise_conns_.push_back(std::move(*conn));
      }
      for (int i = 0; i < options_.noise; ++i) {
        TcpStream* c = noise_conns_[i % holders].get();
        if (absl::Status s = c->Append(
                absl::StrCat("SUB ", NoisePattern(static_cast<uint64_t>(i)),
                             " ", i + 1, "\r\n"));
            !s.ok()) {
          return s;
        }
      }
      for (auto& c : noise_conns_) {
        if (absl::Status s = Ping(c.get()); !s.ok()) return s;
      }
    }

    for (int p = 0; p < options_.pubs; ++p) {
      auto conn =
          Handshake(server_.endpoint, absl::StrCat("sift-bench-pub-", p));
      if (!conn.ok()) return conn.status();
      pub_conns_.push_back(std::move(*conn));
    }
    for (int t = 0; t < options_.topics; ++t) {
      pub_headers_.push_back(absl::StrCat("PUB ", options_.TopicOf(t), " "));
    }
    next_topic_.assign(options_.pubs, 0);
    return absl::OkStatus();
  }

  absl::Status Send(int p, std::string_view payload,
                    uint64_t* retries) override {
    TcpStream& conn = *pub_conns_[p];
    std::string& out = *conn.out();
    size_t& t = next_topic_[p];
    out.append(pub_headers_[t]);
    if (++t == pub_headers_.size()) t = 0;
    char digits[24];
    const int n =
        std::snprintf(digits, sizeof(digits), "%zu\r\n", payload.size());
    out.append(digits, static_cast<size_t>(n));
    out.append(payload.data(), payload.size());
    out.append("\r\n", 2);
    if (out.size() < TcpStream::kFlushBytes) return absl::OkStatus();
    return FlushPublisher(&conn);
  }

  absl::Status Flush(int p) override {
    return FlushPublisher(pub_conns_[p].get());
  }

  void Disconnect() override {
    stop_.store(true);
    for (auto& c : sub_conns_) c->Shutdown();
    for (std::thread& t : readers_) t.join();
    readers_.clear();
    sub_conns_.clear();
    noise_conns_.clear();
    pub_conns_.clear();
  }

  int StopServer() override { return server_.Stop(); }
  pid_t server_pid() const override { return server_.pid; }
  std::string server_description() const override {
    return absl::StrCat("nats-server ", server_.endpoint);
  }
  bool spawned() const override { return server_.child != nullptr; }

 private:
  // Sends the buffer, then reads what the server said to this publisher
  // without waiting: PINGs are answered, an -ERR ends the run.
  absl::Status FlushPublisher(TcpStream* conn) {
    if (absl::Status s = conn->Flush(); !s.ok()) return s;
    if (absl::Status s = conn->Fill(0); !s.ok()) return s;
    while (true) {
      bool found = false;
      std::string_view line = Line(conn->Buffered(), &found);
      if (!found) return absl::OkStatus();
      if (line.rfind("-ERR", 0) == 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("nats-server: ", std::string(line)));
      }
      const bool ping = line == "PING";
      conn->Consume(line.size() + 2);
      if (ping) {
        if (absl::Status s = conn->Append("PONG\r\n"); !s.ok()) return s;
        if (absl::Status s = conn->Flush(); !s.ok()) return s;
      }
    }
  }

  // A subscriber's reader thread: "MSG <subject> <sid> [reply] <n>\r\n"
  // then n payload bytes and "\r\n", to the Receiver; PING answered.
  void ReaderLoop(TcpStream* conn, Receiver* receiver) {
    while (!stop_.load(std::memory_order_relaxed)) {
      if (absl::Status s = conn->Fill(kReadWaitMs); !s.ok()) {
        if (!stop_.load()) {
          std::fprintf(stderr, "sift-bench: nats subscriber: %s\n",
                       std::string(s.message()).c_str());
        }
        return;
      }
      while (true) {
        std::string_view in = conn->Buffered();
        const size_t eol = in.find('\n');
        if (eol == std::string_view::npos) break;
        if (in.size() >= 4 && std::memcmp(in.data(), "MSG ", 4) == 0) {
          // The size is the last field of the line, before "\r\n".
          size_t at = eol - 1;
          while (at > 0 && in[at - 1] != ' ') --at;
          size_t n = 0;
          for (size_t i = at; i + 1 < eol; ++i) n = n * 10 + (in[i] - '0');
          const size_t total = eol + 1 + n + 2;
          if (in.size() < total) break;
          receiver->Record(in.substr(eol + 1, n));
          conn->Consume(total);
          continue;
        }
        const std::string_view line = in.substr(0, eol + 1);
        if (line.rfind("PING", 0) == 0) {
          conn->Append("PONG\r\n").IgnoreError();
          conn->Flush().IgnoreError();
        } else if (line.rfind("-ERR", 0) == 0) {
          std::fprintf(stderr, "sift-bench: nats subscriber: %.*s",
                       static_cast<int>(line.size()), line.data());
        }
        conn->Consume(eol + 1);
      }
    }
  }

  const Options options_;
  Server server_;
  std::vector<std::string> pub_headers_;  // "PUB <topic> ", per topic
  std::vector<size_t> next_topic_;        // publisher p's thread owns [p]
  std::vector<std::unique_ptr<TcpStream>> sub_conns_;  // reader i owns [i]
  std::vector<std::unique_ptr<TcpStream>> noise_conns_;
  std::vector<std::unique_ptr<TcpStream>> pub_conns_;  // publisher p owns [p]
  std::vector<std::thread> readers_;
  std::atomic<bool> stop_{false};
};

}  // namespace

std::unique_ptr<Transport> MakeNatsTransport(const Options& options) {
  return std::make_unique<NatsTransport>(options);
}

}  // namespace sift::bench
