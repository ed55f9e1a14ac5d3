// Example: an application that runs the sift broker inside its own process.
//
// It starts an EmbeddedBroker on inproc://app-bus (and, with --tcp, on a tcp
// port other processes can use), then talks to it with the ordinary client
// library: a worker answers requests, a listener receives notifications.
//
//   bazel run //broker/embedded:embedded_example
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/time/time.h"
#include "broker/embedded/embedded_broker.h"
#include "clients/cpp/client.h"

namespace {

int Fail(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "embedded_example: %s: %s\n", what,
               std::string(status.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  sift::Config config;
  config.endpoints = {"inproc://app-bus"};
  if (argc > 1 && std::strcmp(argv[1], "--tcp") == 0) {
    config.endpoints.push_back("tcp://127.0.0.1:0");
  }
  auto broker = sift::EmbeddedBroker::Start(config);
  if (!broker.ok()) return Fail("start broker", broker.status());
  for (const std::string& endpoint : (*broker)->endpoints()) {
    std::printf("broker listening on %s\n", endpoint.c_str());
  }

  sift::ClientOptions options;
  options.endpoint = "inproc://app-bus";
  options.zmq_context = (*broker)->zmq_context();

  // A worker that upper-cases whatever it is asked.
  options.name = "worker";
  auto worker = sift::Client::Connect(options);
  if (!worker.ok()) return Fail("connect worker", worker.status());
  sift::Client* worker_client = worker->get();
  sift::SubscribeOptions serve;
  serve.queue_group = "uppercase-workers";
  serve.callback = [worker_client](const sift::Message& request) {
    std::string reply(request.payload());
    for (char& c : reply) c = static_cast<char>(std::toupper(c));
    worker_client->Publish(request.reply_to(), reply).IgnoreError();
  };
  auto service = (*worker)->Subscribe("svc.uppercase", serve);
  if (!service.ok()) return Fail("subscribe worker", service.status());

  // A listener for notifications, and the application's own client.
  options.name = "app";
  auto app = sift::Client::Connect(options);
  if (!app.ok()) return Fail("connect app", app.status());
  auto notices = (*app)->Subscribe("notify.>");
  if (!notices.ok()) return Fail("subscribe", notices.status());

  if (absl::Status s =
          (*app)->PublishConfirmed("notify.user.42", "your export is ready");
      !s.ok()) {
    return Fail("publish", s);
  }
  auto notice = (*notices)->Next(absl::Seconds(5));
  if (!notice.ok()) return Fail("receive", notice.status());
  std::printf("notification on %s: %s\n", std::string(notice->topic()).c_str(),
              std::string(notice->payload()).c_str());

  auto reply = (*app)->Request("svc.uppercase", "hello from inside");
  if (!reply.ok()) return Fail("request", reply.status());
  std::printf("reply: %s\n", std::string(reply->payload()).c_str());

  // Clients first, then the broker.
  service->reset();
  notices->reset();
  (*app)->Close();
  (*worker)->Close();
  (*broker)->Stop();
  return 0;
}
