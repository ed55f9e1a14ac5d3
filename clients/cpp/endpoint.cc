#include "clients/cpp/endpoint.h"

#include <errno.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "broker/base/absl_view.h"

namespace sift::internal {

std::string EndpointProblem(std::string_view endpoint) {
  if (endpoint.find("://") == std::string_view::npos) {
    return "not an endpoint (no transport://)";
  }
  constexpr std::string_view kIpc = "ipc://";
  if (endpoint.substr(0, kIpc.size()) == kIpc) {
    const size_t bytes = endpoint.size() - kIpc.size();
    if (bytes == 0) return "no path (ipc://PATH)";
    if (bytes > kMaxIpcPathBytes) {
      return absl::StrCat("its path is ", bytes, " bytes, over the ",
                          kMaxIpcPathBytes, " a Unix socket's path may have");
    }
    return "";
  }
  constexpr std::string_view kTcp = "tcp://";
  if (endpoint.substr(0, kTcp.size()) != kTcp) return "";
  const size_t colon = endpoint.rfind(':');
  if (colon < kTcp.size() || colon == std::string_view::npos) {
    return "no port (tcp://HOST:PORT)";
  }
  if (colon == kTcp.size()) return "no host (tcp://HOST:PORT)";
  const std::string_view port = endpoint.substr(colon + 1);
  uint32_t value = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || port.size() > 5) {
      return absl::StrCat("port \"", AV(port),
                          "\" is not a number from 1 to 65535");
    }
    value = value * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port.empty()) return "no port (tcp://HOST:PORT)";
  if (value < 1 || value > 65535) {
    return absl::StrCat("port ", value, " is out of range (1 to 65535)");
  }
  return "";
}

std::string SilenceHint(std::string_view endpoint) {
  constexpr std::string_view kIpc = "ipc://";
  if (endpoint.substr(0, kIpc.size()) != kIpc) return "";
  const std::string path(endpoint.substr(kIpc.size()));
  struct stat st;
  if (stat(path.c_str(), &st) == 0) return "";
  return absl::StrCat("there is no socket file ", path, " (",
                      std::strerror(errno), ")");
}

}  // namespace sift::internal
