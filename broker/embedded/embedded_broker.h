// EmbeddedBroker runs a complete sift broker inside the application's own
// process, on a thread of its own. Clients in the same process connect with
// the ordinary client library to an inproc:// endpoint, passing zmq_context()
// in ClientOptions; other processes can reach the same broker over tcp:// or
// ipc:// endpoints listed in the config.
//
// Thread-safety: all methods may be called from any thread. Destroying the
// broker stops it.
#ifndef SIFT_BROKER_EMBEDDED_EMBEDDED_BROKER_H_
#define SIFT_BROKER_EMBEDDED_EMBEDDED_BROKER_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "broker/config/config.h"

namespace sift {

class Server;

class EmbeddedBroker {
 public:
  // Binds the endpoints of `config` (e.g. {"inproc://app-bus"}) and starts
  // serving. Errors name the endpoint that could not be bound.
  static absl::StatusOr<std::unique_ptr<EmbeddedBroker>> Start(
      const Config& config);
  ~EmbeddedBroker();
  EmbeddedBroker(const EmbeddedBroker&) = delete;
  EmbeddedBroker& operator=(const EmbeddedBroker&) = delete;

  // The ZeroMQ context inproc:// clients must use (ClientOptions::zmq_context).
  void* zmq_context() const { return context_; }
  // Endpoints as bound (tcp port 0 resolved).
  const std::vector<std::string>& endpoints() const;
  // Stops serving and joins the broker thread. Idempotent. Clients should be
  // closed first; their pending messages are then lost.
  void Stop();

 private:
  EmbeddedBroker(void* context, std::unique_ptr<Server> server);
  void* context_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  bool stopped_ = false;
};

}  // namespace sift

#endif  // SIFT_BROKER_EMBEDDED_EMBEDDED_BROKER_H_
