#include "broker/server/peer_guard.h"

#include <errno.h>
#include <zmq.h>

#include <atomic>
#include <cstring>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"

namespace sift {
namespace {

// The endpoint every libzmq context asks for ZAP (RFC 27).
constexpr char kZapEndpoint[] = "inproc://zeromq.zap.01";
// With the NULL mechanism, libzmq consults the ZAP handler only when the
// socket has a ZAP domain.
constexpr char kZapDomain[] = "siftd";

// Receives one multipart message without blocking; empty if none is pending.
std::vector<std::string> RecvAll(void* socket) {
  std::vector<std::string> frames;
  zmq_msg_t m;
  zmq_msg_init(&m);
  while (true) {
    if (zmq_msg_recv(&m, socket, frames.empty() ? ZMQ_DONTWAIT : 0) < 0) {
      if (zmq_errno() == EINTR) continue;
      break;
    }
    frames.emplace_back(static_cast<const char*>(zmq_msg_data(&m)),
                        zmq_msg_size(&m));
    if (!zmq_msg_more(&m)) break;
  }
  zmq_msg_close(&m);
  return frames;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PeerGuard>> PeerGuard::Create(
    void* context, void* router_socket) {
  std::unique_ptr<PeerGuard> guard(new PeerGuard());
  // One monitor endpoint per guard: several brokers may share a context.
  static std::atomic<uint64_t> next_monitor{0};
  const std::string monitor_endpoint =
      absl::StrCat("inproc://siftd-monitor-", next_monitor.fetch_add(1));
  if (zmq_socket_monitor(router_socket, monitor_endpoint.c_str(),
                         ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |
                             ZMQ_EVENT_ACCEPT_FAILED) != 0) {
    return absl::InternalError(
        absl::StrCat("zmq_socket_monitor: ", zmq_strerror(zmq_errno())));
  }
  guard->monitor_ = zmq_socket(context, ZMQ_PAIR);
  if (guard->monitor_ == nullptr ||
      zmq_connect(guard->monitor_, monitor_endpoint.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("monitor socket: ", zmq_strerror(zmq_errno())));
  }
  size_t size = sizeof(int);
  zmq_getsockopt(guard->monitor_, ZMQ_FD, &guard->monitor_fd_, &size);

  void* zap = zmq_socket(context, ZMQ_REP);
  if (zap == nullptr) {
    return absl::InternalError(
        absl::StrCat("ZAP socket: ", zmq_strerror(zmq_errno())));
  }
  const int linger = 0;
  zmq_setsockopt(zap, ZMQ_LINGER, &linger, sizeof(linger));
  if (zmq_bind(zap, kZapEndpoint) != 0) {
    zmq_close(zap);  // someone else answers ZAP on this context
    return guard;
  }
  guard->zap_ = zap;
  size = sizeof(int);
  zmq_getsockopt(zap, ZMQ_FD, &guard->zap_fd_, &size);
  zmq_setsockopt(router_socket, ZMQ_ZAP_DOMAIN, kZapDomain,
                 sizeof(kZapDomain) - 1);
  return guard;
}

PeerGuard::~PeerGuard() {
  if (zap_ != nullptr) zmq_close(zap_);
  if (monitor_ != nullptr) zmq_close(monitor_);
}

void PeerGuard::Poll(const Callbacks& callbacks) {
  DrainMonitor(callbacks);
  while (zap_ != nullptr && AnswerZap(callbacks)) {
    // A request's connection was accepted (and every connection closed
    // before it reported) before the request was sent: read those events
    // first, so the answer and the sessions reflect them.
    DrainMonitor(callbacks);
  }
  // Answering may have consumed the fds' signal: read both until empty.
  DrainMonitor(callbacks);
}

void PeerGuard::DrainMonitor(const Callbacks& callbacks) {
  // ZMQ_EVENTS makes the socket process its pending commands now (a plain
  // non-blocking receive may postpone that for up to a millisecond), so
  // every event sent before this call is seen.
  int events = 0;
  size_t size = sizeof(events);
  zmq_getsockopt(monitor_, ZMQ_EVENTS, &events, &size);
  while (true) {
    std::vector<std::string> frames = RecvAll(monitor_);
    if (frames.empty()) return;
    if (frames[0].size() < 6) continue;
    uint16_t event;
    uint32_t value;
    std::memcpy(&event, frames[0].data(), sizeof(event));
    std::memcpy(&value, frames[0].data() + 2, sizeof(value));
    const int fd = static_cast<int>(value);
    switch (event) {
      case ZMQ_EVENT_ACCEPTED:
        open_.insert(fd);
        break;
      case ZMQ_EVENT_DISCONNECTED:
        if (open_.erase(fd) > 0) callbacks.disconnected(fd);
        break;
      case ZMQ_EVENT_ACCEPT_FAILED:
        callbacks.accept_failed(static_cast<int>(value));
        break;
      default:
        break;
    }
  }
}

bool PeerGuard::AnswerZap(const Callbacks& callbacks) {
  int events = 0;
  size_t size = sizeof(events);
  zmq_getsockopt(zap_, ZMQ_EVENTS, &events, &size);
  std::vector<std::string> request;
  if (!held_.empty()) {
    request.swap(held_);
  } else {
    request = RecvAll(zap_);
  }
  if (request.empty()) return false;
  // version, request id, domain, address, routing id, mechanism, credentials
  const std::string request_id = request.size() > 1 ? request[1] : "";
  const Admission admission = callbacks.admit();
  if (admission == Admission::kWait) {
    held_.swap(request);  // REP: no other request is read until this one
    return false;         // is answered
  }
  const bool admit = admission == Admission::kAdmit;
  if (!admit) ++refused_;
  const std::string status = admit ? "200" : "300";
  const std::string text = admit ? "OK" : "too many connections";
  const std::string reply[] = {"1.0", request_id, status, text, "", ""};
  for (size_t i = 0; i < std::size(reply); ++i) {
    zmq_send(zap_, reply[i].data(), reply[i].size(),
             i + 1 < std::size(reply) ? ZMQ_SNDMORE : 0);
  }
  return true;
}

}  // namespace sift
