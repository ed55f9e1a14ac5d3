#include "bench/redis_transport.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "bench/servers.h"
#include "bench/sift_transport.h"
#include "bench/tcp_stream.h"

namespace sift::bench {
namespace {

constexpr absl::Duration kReplyTimeout = absl::Seconds(30);
constexpr int kReadWaitMs = 100;

// The decimal number of a RESP length line's body ("123"; "-1" is -1).
// False if it is not one.
bool ParseLength(std::string_view digits, int64_t* out) {
  bool negative = false;
  if (!digits.empty() && digits[0] == '-') {
    negative = true;
    digits.remove_prefix(1);
  }
  if (digits.empty()) return false;
  int64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = negative ? -v : v;
  return true;
}

// One non-array value at `in[at]`: its element, and the offset after it
// (0 if incomplete, *error if malformed).
size_t ParseValue(std::string_view in, size_t at, std::string_view* item,
                  bool* error) {
  const size_t eol = in.find("\r\n", at);
  if (eol == std::string_view::npos) return 0;
  const char type = in[at];
  if (type == '+' || type == '-' || type == ':') {
    *item = in.substr(at, eol - at);
    return eol + 2;
  }
  if (type != '$') {
    *error = true;
    return 0;
  }
  int64_t n = 0;
  if (!ParseLength(in.substr(at + 1, eol - at - 1), &n)) {
    *error = true;
    return 0;
  }
  if (n < 0) {
    *item = {};
    return eol + 2;
  }
  const size_t end = eol + 2 + static_cast<size_t>(n) + 2;
  if (in.size() < end) return 0;
  *item = in.substr(eol + 2, static_cast<size_t>(n));
  return end;
}

// Appends one command as a RESP array of bulk strings.
void AppendCommand(std::string* out,
                   std::initializer_list<std::string_view> args) {
  absl::StrAppend(out, "*", args.size(), "\r\n");
  for (std::string_view a : args) {
    absl::StrAppend(out, "$", a.size(), "\r\n");  // then the bytes
    out->append(a.data(), a.size());
    out->append("\r\n", 2);
  }
}

// Sift's pattern as a Redis glob, and whether it needs PSUBSCRIBE.
std::string GlobOf(const std::string& pattern, bool* is_pattern) {
  std::string glob = absl::StrReplaceAll(pattern, {{">", "*"}});
  *is_pattern = glob.find('*') != std::string::npos;
  return glob;
}

// Reads replies until `n` subscription confirmations ("subscribe" or
// "psubscribe" arrays) have arrived.
absl::Status WaitForConfirmations(TcpStream* conn, int n) {
  const absl::Time deadline = absl::Now() + kReplyTimeout;
  std::vector<std::string_view> items;
  while (n > 0) {
    bool error = false;
    const size_t used = ParseResp(conn->Buffered(), &items, &error);
    if (error) return absl::InternalError("redis-server: unexpected reply");
    if (used == 0) {
      if (absl::Now() > deadline) {
        return absl::DeadlineExceededError(
            "redis-server did not confirm the subscriptions");
      }
      if (absl::Status s = conn->Fill(kReadWaitMs); !s.ok()) return s;
      continue;
    }
    if (!items.empty() && !items[0].empty() && items[0][0] == '-') {
      return absl::FailedPreconditionError(
          absl::StrCat("redis-server: ", std::string(items[0])));
    }
    if (!items.empty() &&
        (items[0] == "subscribe" || items[0] == "psubscribe")) {
      --n;
    }
    conn->Consume(used);
  }
  return absl::OkStatus();
}

class RedisTransport : public Transport {
 public:
  explicit RedisTransport(const Options& options) : options_(options) {}
  ~RedisTransport() override {
    Disconnect();
    StopServer();
  }

  absl::Status Prepare(const std::vector<Receiver*>& receivers) override {
    auto server = StartRedis(options_);
    if (!server.ok()) return server.status();
    server_ = std::move(*server);

    bool is_pattern = false;
    const std::string glob = GlobOf(options_.SubscriberPattern(), &is_pattern);
    for (size_t i = 0; i < receivers.size(); ++i) {
      auto conn = TcpStream::Connect(server_.endpoint);
      if (!conn.ok()) return conn.status();
      AppendCommand((*conn)->out(),
                    {is_pattern ? "PSUBSCRIBE" : "SUBSCRIBE", glob});
      if (absl::Status s = (*conn)->Flush(); !s.ok()) return s;
      if (absl::Status s = WaitForConfirmations(conn->get(), 1); !s.ok()) {
        return s;
      }
      TcpStream* c = conn->get();
      sub_conns_.push_back(std::move(*conn));
      readers_.emplace_back([this, c, r = receivers[i]] { ReaderLoop(c, r); });
    }

    if (options_.noise > 0) {
      const int holders =
          std::max(1, std::min(options_.noise_clients, options_.noise));
      std::vector<int> per_holder(holders, 0);
      for (int k = 0; k < holders; ++k) {
        auto conn = TcpStream::Connect(server_.endpoint);
        if (!conn.ok()) return conn.status();
        noise_conns_.push_back(std::move(*conn));
      }
      for (int i = 0; i < options_.noise; ++i) {
        TcpStream* c = noise_conns_[i % holders].get();
        AppendCommand(c->out(), {"PSUBSCRIBE", NoisePattern(i)});
        ++per_holder[i % holders];
        if (absl::Status s = c->MaybeFlush(); !s.ok()) return s;
      }
      for (int k = 0; k < holders; ++k) {
        if (absl::Status s = noise_conns_[k]->Flush(); !s.ok()) return s;
        if (absl::Status s =
                WaitForConfirmations(noise_conns_[k].get(), per_holder[k]);
            !s.ok()) {
          return s;
        }
      }
    }

    for (int p = 0; p < options_.pubs; ++p) {
      auto conn = TcpStream::Connect(server_.endpoint);
      if (!conn.ok()) return conn.status();
      pub_conns_.push_back(std::move(*conn));
    }
    pub_header_ =
        absl::StrCat("*3\r\n$7\r\nPUBLISH\r\n$", options_.topic.size(), "\r\n",
                     options_.topic, "\r\n$");
    return absl::OkStatus();
  }

  absl::Status Send(int p, std::string_view payload,
                    uint64_t* retries) override {
    TcpStream& conn = *pub_conns_[p];
    std::string& out = *conn.out();
    out.append(pub_header_);
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
    return absl::StrCat("redis-server ", server_.endpoint);
  }
  bool spawned() const override { return server_.child != nullptr; }

 private:
  // Sends the pipeline, then takes the PUBLISH replies that have arrived
  // without waiting for the rest; an error reply ends the run.
  absl::Status FlushPublisher(TcpStream* conn) {
    if (absl::Status s = conn->Flush(); !s.ok()) return s;
    if (absl::Status s = conn->Fill(0); !s.ok()) return s;
    std::string_view in = conn->Buffered();
    size_t used = 0;
    while (true) {
      const size_t eol = in.find("\r\n", used);
      if (eol == std::string_view::npos) break;
      if (in[used] == '-') {
        return absl::FailedPreconditionError(absl::StrCat(
            "redis-server: ", std::string(in.substr(used, eol - used))));
      }
      used = eol + 2;
    }
    conn->Consume(used);
    return absl::OkStatus();
  }

  // A subscriber's reader thread: ["message", channel, payload] or
  // ["pmessage", pattern, channel, payload] to the Receiver.
  void ReaderLoop(TcpStream* conn, Receiver* receiver) {
    std::vector<std::string_view> items;
    while (!stop_.load(std::memory_order_relaxed)) {
      if (absl::Status s = conn->Fill(kReadWaitMs); !s.ok()) {
        if (!stop_.load()) {
          std::fprintf(stderr, "sift-bench: redis subscriber: %s\n",
                       std::string(s.message()).c_str());
        }
        return;
      }
      while (true) {
        bool error = false;
        const size_t used = ParseResp(conn->Buffered(), &items, &error);
        if (error) {
          std::fprintf(stderr, "sift-bench: redis subscriber: bad reply\n");
          return;
        }
        if (used == 0) break;
        if (items.size() == 3 && items[0] == "message") {
          receiver->Record(items[2]);
        } else if (items.size() == 4 && items[0] == "pmessage") {
          receiver->Record(items[3]);
        }
        conn->Consume(used);
      }
    }
  }

  const Options options_;
  Server server_;
  std::string pub_header_;  // PUBLISH's array up to the payload's length
  std::vector<std::unique_ptr<TcpStream>> sub_conns_;  // reader i owns [i]
  std::vector<std::unique_ptr<TcpStream>> noise_conns_;
  std::vector<std::unique_ptr<TcpStream>> pub_conns_;  // publisher p owns [p]
  std::vector<std::thread> readers_;
  std::atomic<bool> stop_{false};
};

}  // namespace

size_t ParseResp(std::string_view in, std::vector<std::string_view>* items,
                 bool* error) {
  items->clear();
  if (in.empty()) return 0;
  if (in[0] != '*') {
    std::string_view item;
    const size_t end = ParseValue(in, 0, &item, error);
    if (end > 0) items->push_back(item);
    return end;
  }
  const size_t eol = in.find("\r\n");
  if (eol == std::string_view::npos) return 0;
  int64_t n = 0;
  if (!ParseLength(in.substr(1, eol - 1), &n)) {
    *error = true;
    return 0;
  }
  size_t at = eol + 2;
  for (int64_t i = 0; i < n; ++i) {
    if (at >= in.size()) return 0;
    if (in[at] == '*') {
      *error = true;
      return 0;
    }
    std::string_view item;
    const size_t end = ParseValue(in, at, &item, error);
    if (end == 0) return 0;
    items->push_back(item);
    at = end;
  }
  return at;
}

std::unique_ptr<Transport> MakeRedisTransport(const Options& options) {
  return std::make_unique<RedisTransport>(options);
}

}  // namespace sift::bench
