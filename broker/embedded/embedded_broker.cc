#include "broker/embedded/embedded_broker.h"

#include <zmq.h>

#include <utility>

#include "broker/server/server.h"

namespace sift {

absl::StatusOr<std::unique_ptr<EmbeddedBroker>> EmbeddedBroker::Start(
    const Config& config) {
  if (absl::Status s = ValidateConfig(config); !s.ok()) return s;
  void* context = zmq_ctx_new();
  auto server = Server::Create(config, context);
  if (!server.ok()) {
    zmq_ctx_term(context);
    return server.status();
  }
  return std::unique_ptr<EmbeddedBroker>(
      new EmbeddedBroker(context, std::move(*server)));
}

EmbeddedBroker::EmbeddedBroker(void* context, std::unique_ptr<Server> server)
    : context_(context), server_(std::move(server)) {
  thread_ = std::thread([this] { server_->Run(); });
}

EmbeddedBroker::~EmbeddedBroker() {
  Stop();
  // Terminating the context waits for sockets still open in this process
  // (clients not closed yet); they are told the context is going away.
  zmq_ctx_term(context_);
}

const std::vector<std::string>& EmbeddedBroker::endpoints() const {
  return server_->endpoints();
}

void EmbeddedBroker::Stop() {
  if (stopped_) return;
  stopped_ = true;
  server_->Shutdown();
  if (thread_.joinable()) thread_.join();
}

}  // namespace sift
