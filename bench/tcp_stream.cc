#include "bench/tcp_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace sift::bench {
namespace {

constexpr size_t kReadBufferBytes = 1 << 20;

absl::Status Errno(std::string_view what) {
  return absl::UnavailableError(
      absl::StrCat(std::string(what), ": ", std::strerror(errno)));
}

}  // namespace

absl::StatusOr<std::unique_ptr<TcpStream>> TcpStream::Connect(
    std::string_view host_port) {
  if (const size_t scheme = host_port.find("://");
      scheme != std::string_view::npos) {
    host_port.remove_prefix(scheme + 3);
  }
  const size_t colon = host_port.rfind(':');
  int port = 0;
  if (colon == std::string_view::npos ||
      !absl::SimpleAtoi(std::string(host_port.substr(colon + 1)), &port) ||
      port <= 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("want HOST:PORT, got \"", std::string(host_port), "\""));
  }
  const std::string host(host_port.substr(0, colon));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(),
                &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("not an IPv4 address: \"", host, "\""));
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    absl::Status s = Errno(absl::StrCat("connect ", std::string(host_port)));
    close(fd);
    return s;
  }
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return std::unique_ptr<TcpStream>(new TcpStream(fd));
}

TcpStream::TcpStream(int fd) : fd_(fd), in_(kReadBufferBytes) {
  out_.reserve(2 * kFlushBytes);
}

TcpStream::~TcpStream() { close(fd_); }

absl::Status TcpStream::Flush() {
  size_t sent = 0;
  while (sent < out_.size()) {
    const ssize_t n =
        send(fd_, out_.data() + sent, out_.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("send");
    }
    sent += static_cast<size_t>(n);
  }
  out_.clear();
  return absl::OkStatus();
}

absl::Status TcpStream::Fill(int timeout_ms) {
  if (in_start_ == in_end_) {
    in_start_ = in_end_ = 0;
  } else if (in_start_ > in_.size() / 2 || in_end_ == in_.size()) {
    // Move the unparsed tail to the front (a message larger than half the
    // buffer grows it instead).
    std::memmove(in_.data(), in_.data() + in_start_, in_end_ - in_start_);
    in_end_ -= in_start_;
    in_start_ = 0;
    if (in_end_ == in_.size()) in_.resize(in_.size() * 2);
  }
  pollfd p = {fd_, POLLIN, 0};
  const int ready = poll(&p, 1, timeout_ms);
  if (ready < 0 && errno != EINTR) return Errno("poll");
  if (ready <= 0) return absl::OkStatus();
  const ssize_t n =
      recv(fd_, in_.data() + in_end_, in_.size() - in_end_, MSG_DONTWAIT);
  if (n == 0) return absl::UnavailableError("connection closed by the server");
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return absl::OkStatus();
    return Errno("recv");
  }
  in_end_ += static_cast<size_t>(n);
  return absl::OkStatus();
}

void TcpStream::Shutdown() { shutdown(fd_, SHUT_RDWR); }

absl::StatusOr<int> FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    absl::Status s = Errno("bind 127.0.0.1:0");
    close(fd);
    return s;
  }
  close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

}  // namespace sift::bench
