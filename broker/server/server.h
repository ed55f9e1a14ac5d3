// Server is siftd's event loop: one ZeroMQ ROUTER socket bound to every
// configured endpoint (tcp://, ipc://, inproc://), a Router behind it, and the
// sessions' liveness. It decodes each request, answers it, and sends the
// deliveries the Router computes, forwarding the payload frame by reference.
//
// Thread-safety: Create() may run on any thread; Run() then owns the socket
// and must be called once, on one thread. Shutdown() may be called from any
// thread and from a signal handler (it only writes to an eventfd).
#ifndef SIFT_BROKER_SERVER_SERVER_H_
#define SIFT_BROKER_SERVER_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <functional>

#include "absl/status/statusor.h"
#include "broker/config/config.h"
#include "broker/plugin/plugin_set.h"
#include "broker/delivery/schedules.h"
#include "broker/streams/stream_config.h"

namespace sift {

class Server {
 public:
  // Binds all endpoints of `config` on the ZeroMQ context `zmq_context`
  // (which must outlive the Server). Fails with a message naming the
  // endpoint that could not be bound. `plugins` are the route chains and
  // plugin rules (broker/plugin/plugin_set.h); null: built-in plugins, no
  // routes. `streams` are the config file's [[streams]]
  // (broker/streams/stream_config.h); they need config.data_dir, where
  // streams made by clients are kept too. Opening the streams can fail
  // (DataLoss naming a corrupt segment, a directory siftd cannot write).
  // `schedules` are the config file's [[schedules]] (docs/schedules.md):
  // messages the broker publishes itself, by interval or cron.
  static absl::StatusOr<std::unique_ptr<Server>> Create(
      const Config& config, void* zmq_context,
      std::unique_ptr<plugin::PluginSet> plugins = nullptr,
      std::vector<streams::StreamSettings> streams = {},
      std::vector<delivery::Schedule> schedules = {});

  // Puts a new plugin set in force (routes, libraries, [subscriptions]): the
  // loop takes it between two messages, so no client or message is lost.
  // Subscription chains made before keep running as they were. Any thread
  // (not a signal handler).
  void Reload(std::unique_ptr<plugin::PluginSet> plugins);
  // How the RELOAD command gets a new plugin set: called on the loop's
  // thread (which pauses meanwhile); its error goes back to the client as
  // INVALID_CONFIG. Set before Run(). Without one, RELOAD is refused.
  using Reloader =
      std::function<absl::StatusOr<std::unique_ptr<plugin::PluginSet>>()>;
  void SetReloader(Reloader reloader);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The endpoints as bound (a tcp port of 0 or * resolved to the real one).
  const std::vector<std::string>& endpoints() const;

  // Serves until Shutdown(). Returns after closing the socket (pending
  // deliveries get up to one second to flush).
  void Run();

  // Asks Run() to return. Async-signal-safe.
  void Shutdown();

 private:
  class Loop;
  explicit Server(std::unique_ptr<Loop> loop);
  std::unique_ptr<Loop> loop_;
};

// sift's release number, and the version string siftd reports in WELCOME
// and STATS ("siftd 0.1.0").
inline constexpr char kSiftVersionNumber[] = "0.1.0";
const char* ServerVersion();

}  // namespace sift

#endif  // SIFT_BROKER_SERVER_SERVER_H_
