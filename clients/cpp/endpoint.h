// Checks on the endpoint a client connects to (tcp://HOST:PORT, ipc://PATH,
// inproc://NAME), for errors that say what is wrong instead of waiting out
// the connect timeout. Internal to the C++ client and sift; pure functions,
// callable from any thread.
#ifndef SIFT_CLIENTS_CPP_ENDPOINT_H_
#define SIFT_CLIENTS_CPP_ENDPOINT_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace sift::internal {

// The longest path a Unix domain socket takes (sun_path less its NUL).
inline constexpr size_t kMaxIpcPathBytes = 107;

// What is wrong with an endpoint that ZeroMQ would refuse with a bare
// "Invalid argument" (no transport://, an empty ipc:// path) or "File name
// too long" (an ipc:// path over kMaxIpcPathBytes), or would take and then
// retry forever (a tcp:// port missing, out of 1 to 65535 or not a number; no
// host): a typo used to wait out the whole connect timeout. "" for the rest:
// host names and paths are left to ZeroMQ.
std::string EndpointProblem(std::string_view endpoint);

// Why nobody answered at `endpoint`, when that can be told from here: an
// ipc:// path with no file ("there is no socket file /tmp/x.sock (No such
// file or directory)"). "" otherwise: a tcp:// port with nothing listening
// cannot be told from a busy broker, since ZeroMQ retries both quietly.
// Reads the file system (one stat()).
std::string SilenceHint(std::string_view endpoint);

}  // namespace sift::internal

#endif  // SIFT_CLIENTS_CPP_ENDPOINT_H_
