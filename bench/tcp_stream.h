// TcpStream: one blocking TCP connection with a write buffer and a read
// buffer, the socket layer of sift-bench's lean NATS and Redis clients
// (bench/nats_transport.cc, bench/redis_transport.cc).
//
// Writes are buffered as the official clients buffer them (nats.go's 32 KiB
// bufio writer; a Redis pipeline): Append() copies into the buffer and sends
// it once it holds kFlushBytes, Flush() sends whatever is left. Reads fill a
// buffer that the caller parses in place (Buffered(), Consume()).
//
// Thread-safety: not thread-safe. One thread writes and one thread reads at
// a time; the two may be different threads (a publisher writing while a
// reader drains replies is not used: each side has one owner).
#ifndef SIFT_BENCH_TCP_STREAM_H_
#define SIFT_BENCH_TCP_STREAM_H_

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sift::bench {

class TcpStream {
 public:
  static constexpr size_t kFlushBytes = 32 * 1024;

  // Connects to "HOST:PORT" (an IPv4 address; "tcp://" or "nats://" or
  // "redis://" prefixes are ignored), TCP_NODELAY set.
  static absl::StatusOr<std::unique_ptr<TcpStream>> Connect(
      std::string_view host_port);
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;
  ~TcpStream();

  // Buffers `data`; sends the buffer once it holds kFlushBytes or more.
  absl::Status Append(std::string_view data) {
    out_.append(data.data(), data.size());
    return out_.size() >= kFlushBytes ? Flush() : absl::OkStatus();
  }
  // The write buffer, for building a command in place; call MaybeFlush()
  // after appending to it.
  std::string* out() { return &out_; }
  absl::Status MaybeFlush() {
    return out_.size() >= kFlushBytes ? Flush() : absl::OkStatus();
  }
  // Sends everything buffered (blocking until the kernel takes it).
  absl::Status Flush();

  // Reads what is available into the read buffer, waiting up to
  // `timeout_ms` (0: do not wait) for the first byte. OK with nothing new
  // on a timeout; Unavailable when the peer closed.
  absl::Status Fill(int timeout_ms);
  std::string_view Buffered() const {
    return std::string_view(in_.data() + in_start_, in_end_ - in_start_);
  }
  void Consume(size_t n) { in_start_ += n; }

  // Wakes a reader blocked in Fill() (it sees the connection closed).
  void Shutdown();

 private:
  explicit TcpStream(int fd);

  int fd_;
  std::string out_;
  std::vector<char> in_;
  size_t in_start_ = 0, in_end_ = 0;
};

// A free TCP port on 127.0.0.1 (bound and released; a server started on it
// right away may still lose a race, which its caller retries).
absl::StatusOr<int> FreeLoopbackPort();

}  // namespace sift::bench

#endif  // SIFT_BENCH_TCP_STREAM_H_
