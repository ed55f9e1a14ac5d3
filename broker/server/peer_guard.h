// PeerGuard tells the broker's loop about the connections behind its ROUTER
// socket, which ZeroMQ otherwise hides: which connection (file descriptor)
// opened and closed, and when. It has two parts:
//
// - a socket monitor (zmq_socket_monitor) that reports every accepted and
//   every closed tcp:// or ipc:// connection with its fd, so a session ends
//   the moment its connection does (not when a send fails or a timeout
//   expires);
// - a ZAP handler (ZeroMQ's authentication hook, RFC 27) that holds each new
//   connection's handshake until the loop has read every earlier monitor
//   event, and refuses connections beyond the configured bound. Because a
//   new connection cannot send, or be sent, anything before the handler
//   answers, a connection that reuses a closed one's routing id (and even its
//   fd number) can never take over the closed one's session.
//
// inproc:// connections have no fd and no handshake: neither part sees
// them; their sessions end by BYE or client_timeout_ms.
//
// Thread-safety: not thread-safe. Created and used by the loop thread that
// owns the ROUTER socket.
#ifndef SIFT_BROKER_SERVER_PEER_GUARD_H_
#define SIFT_BROKER_SERVER_PEER_GUARD_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

namespace sift {

class PeerGuard {
 public:
  // The answer to a connection that asks to be admitted.
  enum class Admission {
    kAdmit,
    kRefuse,
    kWait,  // not yet: the handshake waits; asked again at the next Poll()
  };

  // What the loop learns from one Poll().
  struct Callbacks {
    // A connection closed (by the peer or by ZeroMQ). Called once per fd.
    absl::FunctionRef<void(int fd)> disconnected;
    // Accepting a connection failed (e.g. EMFILE: out of file descriptors);
    // `error` is the errno.
    absl::FunctionRef<void(int error)> accept_failed;
    // Whether a connection that completed its handshake may be admitted
    // (asked once per tcp/ipc connection; it cannot be told apart from the
    // others at this point, so the answer is about counts).
    absl::FunctionRef<Admission()> admit;
  };

  // Sets up both parts for `router_socket`, which must not be bound yet (the
  // ZAP domain must be set before bind). If another ZAP handler already
  // serves `context` (an application embedding the broker may have one), the
  // guard runs without it: sessions still end on disconnect, and
  // has_zap_handler() is false.
  static absl::StatusOr<std::unique_ptr<PeerGuard>> Create(
      void* context, void* router_socket);
  ~PeerGuard();
  PeerGuard(const PeerGuard&) = delete;
  PeerGuard& operator=(const PeerGuard&) = delete;

  // File descriptors the loop polls for POLLIN (ZeroMQ's ZMQ_FD: edge-like,
  // so Poll() reads until nothing is left). zap_fd() is -1 without a handler.
  int monitor_fd() const { return monitor_fd_; }
  int zap_fd() const { return zap_fd_; }
  bool has_zap_handler() const { return zap_ != nullptr; }

  // Reads every pending monitor event and answers every pending ZAP request
  // (each after the monitor events that precede it). Cheap when idle.
  void Poll(const Callbacks& callbacks);

  // True while a connection's admission waits (Admission::kWait).
  bool has_held_request() const { return !held_.empty(); }

  // tcp:// and ipc:// connections currently open.
  size_t connections() const { return open_.size(); }
  // Connections refused for the bound since start.
  uint64_t refused() const { return refused_; }

 private:
  PeerGuard() = default;
  void DrainMonitor(const Callbacks& callbacks);
  bool AnswerZap(const Callbacks& callbacks);

  void* monitor_ = nullptr;  // PAIR connected to the socket's monitor
  void* zap_ = nullptr;      // REP bound to inproc://zeromq.zap.01, or null
  int monitor_fd_ = -1;
  int zap_fd_ = -1;
  absl::flat_hash_set<int> open_;  // fds of open connections
  std::vector<std::string> held_;  // a ZAP request waiting for its answer
  uint64_t refused_ = 0;
};

}  // namespace sift

#endif  // SIFT_BROKER_SERVER_PEER_GUARD_H_
